// Switchboard web chat: WebRTC data channel "chat", JSON frames (see
// README.md, "WebRTC data-channel protocol"). No build step.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const store = window.localStorage;
  const state = { pc: null, dc: null, location: null, token: "", room: "", name: "", id: "", me: null,
    backoff: 1000, timer: null, leaving: false, replyTo: null, items: new Map() };

  if (!store.getItem("sb-id")) {
    const a = new Uint8Array(8); crypto.getRandomValues(a);
    store.setItem("sb-id", "web-" + Array.from(a, (b) => b.toString(16).padStart(2, "0")).join(""));
  }
  state.id = store.getItem("sb-id");
  $("name").value = store.getItem("sb-name") || "";
  const m = location.pathname.match(/^\/chat\/([A-Za-z0-9._-]{1,64})$/);
  if (m) $("room").value = m[1];

  function status(text, cls) { const s = $("status"); s.textContent = text; s.className = "status " + (cls || ""); }

  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    state.name = $("name").value.trim(); state.room = $("room").value.trim(); state.token = $("token").value;
    if (!state.name || !state.room) return;
    store.setItem("sb-name", state.name);
    history.replaceState(null, "", "/chat/" + state.room);
    $("title").textContent = state.room;
    state.leaving = false;
    connect();
  });

  async function connect() {
    clearTimeout(state.timer);
    $("join-error").textContent = "";
    status("connecting…");
    const pc = new RTCPeerConnection();
    const dc = pc.createDataChannel("chat");
    state.pc = pc; state.dc = dc;
    dc.onopen = () => dc.send(JSON.stringify({ type: "hello", name: state.name, id: state.id }));
    dc.onmessage = (e) => { try { onFrame(JSON.parse(e.data)); } catch (err) { console.warn(err); } };
    dc.onclose = () => retry("disconnected");
    pc.onconnectionstatechange = () => { if (pc.connectionState === "failed") retry("connection failed"); };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
        setTimeout(resolve, 3000);
      });
      const headers = { "Content-Type": "application/sdp" };
      if (state.token) headers.Authorization = "Bearer " + state.token;
      const resp = await fetch("/webrtc/" + encodeURIComponent(state.room), { method: "POST", headers, body: pc.localDescription.sdp });
      const body = await resp.text();
      if (resp.status === 401) { $("token-row").hidden = false; return fail("This room needs a token."); }
      if (resp.status === 404) return fail("No room \"" + state.room + "\" here.");
      if (resp.status !== 201) throw new Error(body || resp.statusText);
      state.location = resp.headers.get("Location");
      await pc.setRemoteDescription({ type: "answer", sdp: body });
    } catch (err) {
      retry(String(err.message || err));
    }
  }

  function fail(msg) {
    cleanup();
    $("chat").hidden = true; $("join").hidden = false;
    $("join-error").textContent = msg;
  }

  function cleanup() {
    const pc = state.pc;
    state.pc = null; state.dc = null;
    if (pc) { pc.onconnectionstatechange = null; for (const c of [pc]) c.close(); }
  }

  function retry(why) {
    if (state.leaving || !state.pc) return;
    cleanup();
    status("offline: " + why + " — retrying", "bad");
    state.timer = setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 30000);
  }

  $("leave").addEventListener("click", () => {
    state.leaving = true;
    if (state.location) {
      const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
      fetch(state.location, { method: "DELETE", headers }).catch(() => {});
    }
    cleanup();
    $("chat").hidden = true; $("join").hidden = false;
  });

  function send(frame) {
    if (state.dc && state.dc.readyState === "open") { state.dc.send(JSON.stringify(frame)); return true; }
    return false;
  }

  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return;
    const frame = { type: "message", text };
    if (state.replyTo) frame.reply_to = state.replyTo;
    if (send(frame)) { $("text").value = ""; setReply(null); }
  });
  $("cancel-reply").addEventListener("click", () => setReply(null));

  function setReply(id) {
    state.replyTo = id;
    $("replying").hidden = !id;
    if (id) { const it = state.items.get(id); $("replying-text").textContent = "Replying to " + (it ? it.name + ": " + it.text.slice(0, 60) : "a message"); $("text").focus(); }
  }

  function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }

  function addNote(text) {
    const li = el("li", "note", text);
    append(li);
  }

  function append(li) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.appendChild(li);
    while (list.children.length > 500) list.removeChild(list.firstChild);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        state.me = f.id; state.backoff = 1000;
        $("join").hidden = true; $("chat").hidden = false;
        status("connected as " + f.name, "ok");
        addNote("You joined " + f.room + (f.peers && f.peers.length ? " with " + f.peers.map((p) => p.name).join(", ") : ""));
        $("text").focus();
        return;
      case "error":
        if (f.code === "room_full") { state.leaving = true; fail(f.message); return; }
        addNote("⚠ " + f.message);
        return;
      case "message": return showMessage(f);
      case "edit": {
        const it = state.items.get(f.edit_of);
        if (it) { it.text = f.text; it.body.textContent = f.text; it.li.classList.add("edited"); }
        return;
      }
      case "delete": {
        const it = state.items.get(f.target);
        if (it) { it.body.textContent = "(deleted)"; it.li.classList.add("deleted"); }
        return;
      }
      case "reaction": {
        const it = state.items.get(f.target);
        if (!it) return;
        const n = (it.reactions.get(f.key) || 0) + (f.remove ? -1 : 1);
        if (n > 0) it.reactions.set(f.key, n); else it.reactions.delete(f.key);
        it.react.textContent = Array.from(it.reactions, ([k, c]) => k + (c > 1 ? " " + c : "")).join("  ");
        return;
      }
      case "join": return addNote((f.sender.name || f.sender.id) + " joined" + badgeText(f));
      case "leave": return addNote((f.sender.name || f.sender.id) + " left" + badgeText(f));
      case "rename": return addNote(f.previous + " is now " + f.sender.name + badgeText(f));
      case "topic": return addNote("Topic: " + (f.topic || "(none)"));
      default: return;
    }
  }

  function badgeText(f) { return f.network ? " (" + f.network + ")" : ""; }

  function showMessage(f) {
    if (state.items.has(f.id)) return;
    const li = el("li", "msg" + (f.sender.id === state.me && f.network === "web" ? " mine" : ""));
    li.dataset.id = f.id;
    const head = el("div", "head");
    head.appendChild(el("span", "who", f.sender.name || f.sender.id));
    head.appendChild(el("span", "badge", f.network));
    if (f.ts) head.appendChild(el("time", "ts", new Date(f.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    li.appendChild(head);
    if (f.reply_to) {
      const q = state.items.get(f.reply_to);
      li.appendChild(el("div", "quote", q ? "↪ " + q.name + ": " + q.text.slice(0, 80) : "↪ reply"));
    }
    const body = el("div", "body" + (f.emote ? " emote" : ""), f.text);
    li.appendChild(body);
    const react = el("div", "reactions");
    li.appendChild(react);
    const tools = el("div", "tools");
    const reply = el("button", "", "Reply"); reply.type = "button"; reply.onclick = () => setReply(f.id);
    const like = el("button", "", "👍"); like.type = "button"; like.onclick = () => send({ type: "reaction", target: f.id, key: "👍" });
    tools.append(reply, like);
    if (li.classList.contains("mine")) {
      const edit = el("button", "", "Edit"); edit.type = "button";
      edit.onclick = () => { const t = prompt("Edit message", state.items.get(f.id).text); if (t && t.trim()) send({ type: "edit", target: f.id, text: t }); };
      const del = el("button", "", "Delete"); del.type = "button";
      del.onclick = () => { if (confirm("Delete this message?")) send({ type: "delete", target: f.id }); };
      tools.append(edit, del);
    }
    li.appendChild(tools);
    state.items.set(f.id, { li, body, react, text: f.text, name: f.sender.name, reactions: new Map() });
    append(li);
  }
})();
