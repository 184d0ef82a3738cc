// Switchboard web chat: WebRTC data channel "chat", JSON frames (see
// README.md, "WebRTC data-channel protocol"). No build step.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const store = window.localStorage;
  const state = { pc: null, dc: null, location: null, token: "", personToken: "", person: "", room: "", name: "", id: "", me: null, network: "",
    backoff: 1000, timer: null, leaving: false, joined: false, replyTo: null, editing: null, items: new Map(),
    verifiedNames: new Set(), dms: new Set(), threads: new Map() };

  if (!store.getItem("sb-id")) {
    const a = new Uint8Array(8); crypto.getRandomValues(a);
    store.setItem("sb-id", "web-" + Array.from(a, (b) => b.toString(16).padStart(2, "0")).join(""));
  }
  state.id = store.getItem("sb-id");
  $("name").value = store.getItem("sb-name") || "";
  const m = location.pathname.match(/^\/chat\/([A-Za-z0-9._-]{1,64})$/);
  if (m) $("room").value = m[1];

  // status shows the connection's state in the chat's header, and on the
  // join form until the first welcome.
  function status(text, cls) {
    const s = $("status"); s.textContent = text; s.className = "status " + (cls || "");
    if (!state.joined) { $("join-error").textContent = cls === "bad" ? text : ""; }
  }

  $("person-token").addEventListener("input", (e) => e.target.removeAttribute("aria-invalid"));
  $("join").addEventListener("submit", (e) => {
    e.preventDefault();
    state.name = $("name").value.trim(); state.room = $("room").value.trim(); state.token = $("token").value;
    // A personal token is kept for this page only, never stored: with it
    // Switchboard shows the person's configured name, whatever is typed.
    state.personToken = $("person-token").value.trim();
    if (!state.room) return;
    if (!state.name && !state.personToken) { $("join-error").textContent = "Enter a name, or your personal token."; return; }
    if (state.name) store.setItem("sb-name", state.name);
    history.replaceState(null, "", "/chat/" + state.room);
    $("title").textContent = state.room;
    state.leaving = false; state.joined = false; state.backoff = 1000;
    $("join-button").disabled = true; $("join-button").textContent = "Joining…";
    connect();
  });

  // iceServers asks Switchboard which STUN/TURN servers to gather with
  // (Link headers, RFC 9725); none when it does not say.
  async function iceServers() {
    const headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    try {
      const resp = await fetch("/webrtc/" + encodeURIComponent(state.room), { method: "OPTIONS", headers });
      return resp.ok ? parseIceLinks(resp.headers.get("Link") || "") : [];
    } catch (err) {
      return [];
    }
  }

  // parseIceLinks reads the rel="ice-server" entries of a Link header
  // (several headers arrive joined by commas).
  function parseIceLinks(header) {
    const servers = [];
    const param = /;\s*([A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,\s]*))/g;
    for (const link of header.matchAll(/<([^>]*)>((?:\s*;\s*[A-Za-z-]+\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,\s]*))*)/g)) {
      const p = {};
      for (const m of link[2].matchAll(param)) p[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
      if (p.rel !== "ice-server") continue;
      const server = { urls: link[1] };
      if (p.username !== undefined) { server.username = p.username; server.credential = p.credential || ""; }
      servers.push(server);
    }
    return servers;
  }

  async function connect() {
    clearTimeout(state.timer); state.timer = null;
    if (state.leaving) return;
    status("connecting…");
    const ice = await iceServers();
    if (state.leaving) return;
    const pc = new RTCPeerConnection({ iceServers: ice });
    const dc = pc.createDataChannel("chat");
    state.pc = pc; state.dc = dc; state.location = null;
    // Events of a connection that was replaced since are ignored.
    const current = () => state.pc === pc;
    dc.onopen = () => { if (current()) dc.send(JSON.stringify({ type: "hello", name: state.name, id: state.id })); };
    dc.onmessage = (e) => {
      if (!current()) return;
      let f;
      try { f = JSON.parse(e.data); } catch (err) { console.warn("bad frame", err); return; }
      onFrame(f);
    };
    dc.onclose = () => { if (current()) retry("disconnected"); };
    pc.onconnectionstatechange = () => { if (current() && pc.connectionState === "failed") retry("connection failed"); };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
        setTimeout(resolve, 3000);
      });
      const headers = { "Content-Type": "application/sdp" };
      if (state.token) headers.Authorization = "Bearer " + state.token;
      if (state.personToken) headers["X-Switchboard-Person"] = state.personToken;
      const resp = await fetch("/webrtc/" + encodeURIComponent(state.room), { method: "POST", headers, body: pc.localDescription.sdp });
      const body = await resp.text();
      if (!current()) return;
      if (resp.status === 401) { $("token-row").hidden = false; return fail("This room needs a token."); }
      if (resp.status === 403) {
        // The field that was wrong is marked and focused, ready to fix.
        fail("Your personal token was not accepted: check it, or join without it.");
        const f = $("person-token"); f.setAttribute("aria-invalid", "true"); f.focus(); f.select();
        return;
      }
      if (resp.status === 404) return fail("No room \"" + state.room + "\" here.");
      if (resp.status !== 201) throw new Error(body || resp.statusText);
      state.location = resp.headers.get("Location");
      await pc.setRemoteDescription({ type: "answer", sdp: body });
    } catch (err) {
      if (current()) retry(String(err.message || err));
    }
  }

  // showJoin goes back to the join form, for good: no more retries.
  function showJoin(msg) {
    state.leaving = true; state.joined = false;
    clearTimeout(state.timer); state.timer = null;
    cleanup();
    $("chat").hidden = true; $("join").hidden = false;
    $("join-button").disabled = false; $("join-button").textContent = "Join";
    $("join-error").textContent = msg || "";
  }
  function fail(msg) { showJoin(msg); }

  function cleanup() {
    const pc = state.pc, dc = state.dc;
    state.pc = null; state.dc = null;
    if (dc) { dc.onopen = dc.onmessage = dc.onclose = null; }
    if (pc) { pc.onconnectionstatechange = null; pc.close(); }
  }

  // retry reconnects after a growing delay (1 s, 2 s, … 30 s, with jitter);
  // a welcome resets it.
  function retry(why) {
    if (state.leaving || !state.pc) return;
    cleanup();
    const delay = Math.round(state.backoff * (0.75 + Math.random() * 0.5));
    status("offline (" + why + "), retrying in " + Math.ceil(delay / 1000) + " s", "bad");
    state.timer = setTimeout(connect, delay);
    state.backoff = Math.min(state.backoff * 2, 30000);
  }

  function endSession(keepalive) {
    if (!state.location) return;
    const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
    fetch(state.location, { method: "DELETE", headers, keepalive }).catch(() => {});
    state.location = null;
  }

  $("leave").addEventListener("click", () => { endSession(false); showJoin(""); });
  window.addEventListener("pagehide", () => endSession(true));

  function send(frame) {
    if (state.dc && state.dc.readyState === "open") { state.dc.send(JSON.stringify(frame)); return true; }
    addNote("Not connected: not sent.");
    return false;
  }

  $("send").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return;
    let frame = { type: "message", text };
    if (state.editing) frame = { type: "edit", target: state.editing, text };
    else if (state.replyTo) frame.reply_to = state.replyTo;
    if (send(frame)) { $("text").value = ""; setReply(null); }
  });
  $("cancel-reply").addEventListener("click", () => { if (state.editing) $("text").value = ""; setReply(null); });
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Escape" && (state.replyTo || state.editing)) {
      if (state.editing) $("text").value = "";
      setReply(null);
    } else if (e.key === "ArrowUp" && !$("text").value) {
      // As in most chat apps: up in an empty box edits one's last message.
      const mine = [...state.items.entries()].filter(([, it]) => it.own && !it.deleted).pop();
      if (mine) { e.preventDefault(); setEdit(mine[0]); }
    }
  });

  // setReply and setEdit choose what the send box does next: a reply to
  // a message, or a new text for one's own; the bar above it says which.
  function setReply(id) { setMode(id, null); }
  function setEdit(id) { setMode(null, id); }
  function setMode(replyTo, editing) {
    state.replyTo = replyTo; state.editing = editing;
    const id = replyTo || editing, it = id && state.items.get(id);
    $("replying").hidden = !id;
    if (!id) return;
    if (editing) {
      $("replying-text").textContent = "Editing your message";
      $("text").value = it ? it.text : "";
    } else {
      $("replying-text").textContent = "Replying to " + (it ? it.name + ": " + it.text.slice(0, 60) : "a message");
    }
    $("text").focus();
  }

  function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }

  function addNote(text) {
    const li = el("li", "note", text);
    append(li, false);
  }

  // append adds to the list, and scrolls down if it was at the bottom or
  // when force (one's own messages).
  function append(li, force) {
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.appendChild(li);
    while (list.children.length > 500) {
      const first = list.firstChild;
      if (first.dataset.id) state.items.delete(first.dataset.id);
      list.removeChild(first);
    }
    if (atBottom || force) list.scrollTop = list.scrollHeight;
  }

  // colour picks one of eight classes for a name, the same every time.
  function colour(name) {
    let h = 0;
    for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) >>> 0;
    return "c" + (h % 8);
  }

  function onFrame(f) {
    switch (f.type) {
      case "welcome": {
        const again = state.joined;
        state.me = f.id; state.person = f.person || ""; state.network = f.network || ""; state.backoff = 1000; state.joined = true;
        $("join").hidden = true; $("chat").hidden = false;
        $("join-button").disabled = false; $("join-button").textContent = "Join";
        status("connected as " + f.name + (f.person ? " ✓ verified" : ""), "ok");
        if (f.person) learnVerified(f.name);
        for (const p of f.peers || []) if (p.person) learnVerified(p.name);
        const others = (f.peers || []).filter((p) => p.id !== f.id).map((p) => p.name + (p.person ? " ✓" : ""));
        addNote((again ? "Reconnected to " : "You joined ") + f.room + (others.length ? " with " + others.join(", ") : ""));
        setFiles(f.limits);
        $("text").focus();
        return;
      }
      case "error":
        // Both end the session: back to the join form, no retrying.
        if (f.code === "room_full" || f.code === "room_closed") { fail(f.message); return; }
        addNote("⚠ " + f.message);
        return;
      case "message": return showMessage(f);
      case "history": return renderHistory(f);
      case "history_end": return endHistory(f);
      case "direct": return showDirect(f);
      case "notice": return showNotice(f);
      case "edit": {
        const it = state.items.get(f.edit_of);
        if (it) { it.text = f.text; it.body.textContent = f.text; it.li.classList.add("edited"); }
        if (it) it.body.classList.remove("filename"); // a new caption for a file shows
        return;
      }
      case "delete": {
        if (state.editing === f.target || state.replyTo === f.target) setReply(null);
        const it = state.items.get(f.target);
        if (it) { it.deleted = true; it.body.textContent = "(deleted)"; it.li.classList.add("deleted"); }
        if (it && it.atts) { it.atts.remove(); it.atts = null; }
        return;
      }
      case "reaction": {
        const it = state.items.get(f.target);
        if (!it) return;
        const n = (it.reactions.get(f.key) || 0) + (f.remove ? -1 : 1);
        if (n > 0) it.reactions.set(f.key, n); else it.reactions.delete(f.key);
        if (isMine(f)) { if (f.remove) it.mine.delete(f.key); else it.mine.add(f.key); }
        it.react.textContent = Array.from(it.reactions, ([k, c]) => k + (c > 1 ? " " + c : "")).join("  ");
        return;
      }
      case "join": if (f.sender && f.sender.person) learnVerified(f.sender.name);
        return addNote(senderText(f) + " joined" + badgeText(f));
      case "leave": return addNote(senderText(f) + " left" + badgeText(f));
      case "rename": return addNote(f.previous + " is now " + f.sender.name + badgeText(f));
      case "topic": return addNote("Topic: " + (f.topic || "(none)"));
      default: return;
    }
  }

  // History: after the welcome come the link's last messages, oldest
  // first, each as it stands now ("history" frames, see docs/webrtc.md),
  // then "history_end"; the room's live traffic only after them. Each is
  // shown once (by id: after a reconnection only what was missed), under
  // an "Earlier messages" divider, with its original date and time.
  function renderHistory(f) {
    const e = f.event;
    if (!e || e.type !== "message" || !e.id || !e.sender || state.items.has(e.id)) return;
    if (!state.historyDivider) {
      state.historyDivider = el("li", "note divider", "Earlier messages");
      state.historyDivider.setAttribute("role", "separator");
      append(state.historyDivider, false);
    }
    showMessage(e);
    const it = state.items.get(e.id);
    if (!it) return;
    it.li.classList.add("history");
    if (f.edited) { it.li.classList.add("edited"); it.li.title = "edited " + new Date(f.edited).toLocaleString(); }
    const t = it.head.querySelector("time");
    if (t && e.ts) {
      const d = new Date(e.ts), today = d.toDateString() === new Date().toDateString();
      t.dateTime = e.ts;
      t.textContent = today ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
        : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    }
  }
  function endHistory() {
    if (state.historyDivider) {
      const li = el("li", "note divider", "Now");
      li.setAttribute("role", "separator");
      append(li, false);
    }
    state.historyDivider = null;
  }

  // The Direct panel, shown from the first private message on (a
  // person's page is their inbox): each one to or from them, with
  // whom (name and network); the answer goes to the chosen conversation,
  // by default the one last written in.
  function threadKey(w) { return w.network + "\n" + w.id; }
  function showDirect(f) {
    const e = f.event || {}, w = f.with || {};
    if (e.type !== "message" || !w.network || !w.id || !e.id || state.dms.has(e.id)) return;
    state.dms.add(e.id);
    $("direct").hidden = false;
    const mine = !!state.person && !!e.sender && e.sender.person === state.person;
    const key = threadKey(w), label = (w.name || w.id) + " (" + w.network + ")";
    let opt = state.threads.get(key);
    if (!opt) {
      opt = el("option", "", label); opt.value = key; opt.dataset.network = w.network; opt.dataset.id = w.id; opt.dataset.name = w.name || "";
      state.threads.set(key, opt);
    }
    $("direct-to").prepend(opt);
    if (!mine) $("direct-to").value = key;
    const li = el("li", "dm" + (mine ? " mine" : ""));
    li.dataset.id = e.id; li.dataset.with = key;
    const head = el("div", "head");
    head.appendChild(el("span", "with", mine ? "You → " + label : label + " → you, privately"));
    if (e.ts) head.appendChild(el("time", "ts", new Date(e.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    li.appendChild(head);
    const body = el("div", "body" + (e.emote ? " emote" : ""), e.text || "");
    li.appendChild(body);
    const atts = renderAttachments(e, body);
    if (atts) li.appendChild(atts);
    const list = $("direct-messages");
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }
  $("direct-send").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("direct-text").value, opt = state.threads.get($("direct-to").value);
    if (!text.trim() || !opt) return;
    if (send({ type: "direct", to: { network: opt.dataset.network, id: opt.dataset.id, name: opt.dataset.name }, text })) $("direct-text").value = "";
  });

  function badgeText(f) { return f.network ? " (" + f.network + ")" : ""; }

  // A sender with "person" set is one of the configured people, as their
  // network (or their personal token here) vouched for them: verified.
  function senderText(f) {
    const name = f.sender.name || f.sender.id;
    return name + (f.sender.person ? " ✓" : impostor(name) ? " (not verified)" : "");
  }

  // A name one of the people was verified under here may be taken by
  // anyone else (a visitor typing it, an IRC nick not logged in): such a
  // sender is marked "not verified", so the missing ✓ is not the only
  // difference. learnVerified marks what was shown before the name was.
  function nameKey(name) { return String(name || "").trim().toLowerCase(); }
  function impostor(name) { return state.verifiedNames.has(nameKey(name)); }
  function learnVerified(name) {
    const k = nameKey(name);
    if (!k || state.verifiedNames.has(k)) return;
    state.verifiedNames.add(k);
    for (const it of state.items.values()) if (!it.verified && nameKey(it.name) === k) markUnverified(it.head);
  }
  function markUnverified(head) {
    if (head.querySelector(".unverified")) return;
    const u = el("span", "unverified", "not verified");
    u.title = "not one of the verified people, whatever the name";
    head.querySelector(".who").after(u);
  }
  function verifiedMark(f) {
    const v = el("span", "verified", "✓");
    v.title = "verified: " + f.sender.person;
    v.setAttribute("aria-label", "verified");
    return v;
  }

  // A verified person's messages from any of their accounts are theirs
  // too, to edit and delete.
  function isMine(f) {
    return !!f.sender && ((f.sender.id === state.me && f.network === state.network) || (!!state.person && f.sender.person === state.person));
  }

  // showNotice shows what Switchboard itself says (answers to chat
  // commands): apart from the chat, no tools, never replied to.
  function showNotice(f) {
    const li = el("li", "msg notice system");
    const head = el("div", "head");
    head.appendChild(el("span", "who", (f.sender && f.sender.name) || "Switchboard"));
    if (f.ts) head.appendChild(el("time", "ts", new Date(f.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    li.appendChild(head);
    li.appendChild(el("div", "body", f.text || ""));
    append(li, false);
  }

  function showMessage(f) {
    if (!f.id || state.items.has(f.id)) return;
    const mine = isMine(f);
    const li = el("li", "msg" + (mine ? " mine" : "") + (f.notice ? " notice" : ""));
    li.dataset.id = f.id;
    li.tabIndex = 0; // a tap shows its tools
    const head = el("div", "head");
    const who = f.sender.name || f.sender.id;
    head.appendChild(el("span", "who " + colour(who), who));
    if (f.sender.person) { learnVerified(who); head.appendChild(verifiedMark(f)); }
    head.appendChild(el("span", "badge", f.network));
    if (f.ts) head.appendChild(el("time", "ts", new Date(f.ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    li.appendChild(head);
    if (!f.sender.person && impostor(who)) markUnverified(head);
    if (f.reply_to) {
      const q = state.items.get(f.reply_to);
      li.appendChild(el("div", "quote", q ? "↪ " + q.name + ": " + q.text.slice(0, 80) : "↪ reply"));
    }
    const body = el("div", "body" + (f.emote ? " emote" : ""), f.text || "");
    li.appendChild(body);
    const atts = renderAttachments(f, body);
    if (atts) li.appendChild(atts);
    const react = el("div", "reactions");
    li.appendChild(react);
    const tools = el("div", "tools");
    const reply = el("button", "", "Reply"); reply.type = "button"; reply.onclick = () => setReply(f.id);
    const like = el("button", "", "👍"); like.type = "button"; like.setAttribute("aria-label", "Like");
    like.onclick = () => { const it = state.items.get(f.id); send({ type: "reaction", target: f.id, key: "👍", remove: !!(it && it.mine.has("👍")) }); };
    tools.append(reply, like);
    if (mine) {
      const edit = el("button", "", "Edit"); edit.type = "button";
      edit.onclick = () => setEdit(f.id);
      // Deleting asks once more, on the button itself, for a few seconds.
      const del = el("button", "", "Delete"); del.type = "button";
      let armed = null;
      del.onclick = () => {
        if (!armed) {
          del.textContent = "Delete?"; del.classList.add("confirm");
          armed = setTimeout(() => { armed = null; del.textContent = "Delete"; del.classList.remove("confirm"); }, 4000);
          return;
        }
        clearTimeout(armed); armed = null;
        send({ type: "delete", target: f.id });
      };
      tools.append(edit, del);
    }
    li.appendChild(tools);
    state.items.set(f.id, { li, head, body, react, text: f.text || "", name: who, verified: !!f.sender.person, own: mine, reactions: new Map(), mine: new Set() });
    state.items.get(f.id).atts = atts;
    append(li, mine);
  }

  // Files. The page sends a file over HTTP on its session (docs/webrtc.md,
  // "Files"), not over the data channel; the room then gets it as a
  // message with the file attached, echoed back like any other.
  function setFiles(limits) {
    state.maxFile = (limits && limits.max_file) || 0;
    $("attach").hidden = !state.maxFile;
  }
  $("attach").addEventListener("click", () => $("file").click());
  // The lists are copied at once: the input's empties when it is reset,
  // a drop's once its event is over.
  $("file").addEventListener("change", (e) => { sendFiles([...e.target.files]); e.target.value = ""; });
  // Drop a file anywhere on the chat.
  $("chat").addEventListener("dragover", (e) => {
    if (!state.maxFile || !e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
    e.preventDefault(); e.dataTransfer.dropEffect = "copy"; $("chat").classList.add("dropping");
  });
  $("chat").addEventListener("dragleave", (e) => { if (!$("chat").contains(e.relatedTarget)) $("chat").classList.remove("dropping"); });
  $("chat").addEventListener("drop", (e) => {
    $("chat").classList.remove("dropping");
    if (!state.maxFile || !e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault(); sendFiles([...e.dataTransfer.files]);
  });
  // Paste an image (a screenshot) into the send box.
  $("text").addEventListener("paste", (e) => {
    const files = e.clipboardData ? [...e.clipboardData.files].filter((f) => f.type.startsWith("image/")) : [];
    if (!state.maxFile || !files.length) return;
    e.preventDefault();
    sendFiles(files.map((f) => (f.name && f.name !== "image.png") ? f : new File([f], "pasted-image." + (f.type.split("/")[1] || "png"), { type: f.type })));
  });

  async function sendFiles(files) {
    for (const file of files) await sendFile(file);
  }
  async function sendFile(file) {
    if (!state.location || !state.joined) { addNote("Not connected: " + file.name + " not sent."); return; }
    if (file.size > state.maxFile) { addNote("⚠ " + file.name + " is " + fmtSize(file.size) + ": files may be at most " + fmtSize(state.maxFile) + "."); return; }
    if (!file.size) { addNote("⚠ " + file.name + " is empty: not sent."); return; }
    const headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (state.personToken) headers["X-Switchboard-Person"] = state.personToken;
    const btn = $("attach");
    btn.disabled = true; btn.setAttribute("aria-busy", "true");
    // Shown while it goes; the room's echo of the message replaces it.
    const note = el("li", "note sending", "Sending " + file.name + " (" + fmtSize(file.size) + ")…");
    append(note, true);
    try {
      // A file sent while replying answers that message.
      const replyTo = state.editing ? null : state.replyTo;
      const query = "?name=" + encodeURIComponent(file.name) + (replyTo ? "&reply_to=" + encodeURIComponent(replyTo) : "");
      const resp = await fetch(state.location + "/files" + query, { method: "POST", headers, body: file });
      if (resp.status === 201 && replyTo && state.replyTo === replyTo) setReply(null);
      if (resp.status !== 201) addNote("⚠ " + file.name + " not sent: " + ((await resp.text()).trim() || resp.statusText));
    } catch (err) {
      addNote("⚠ " + file.name + " not sent: " + String(err.message || err));
    } finally {
      note.remove();
      btn.disabled = false; btn.removeAttribute("aria-busy");
    }
  }

  function fmtSize(n) {
    if (!(n >= 0)) return "";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + " KB";
    return (n / 1024 / 1024).toFixed(n < 10485760 ? 1 : 0) + " MB";
  }

  // safeURL is the attachment's URL if it is http(s), else null: nothing
  // else (javascript:, data:) is ever put in a link or an image.
  function safeURL(raw) {
    try {
      const u = new URL(String(raw || ""));
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (err) {
      return null;
    }
  }
  function isImage(att, url) {
    const mime = String(att.mime || "").toLowerCase().split(";")[0].trim();
    if (mime) return mime.startsWith("image/") && !mime.includes("svg");
    return /\.(png|jpe?g|gif|webp|avif|bmp)$/i.test(new URL(url).pathname);
  }

  // renderAttachments shows a message's files under its text, which is
  // hidden when it only repeats a file's name or link (as the text of a
  // file from Matrix or the page does).
  function renderAttachments(f, body) {
    const list = Array.isArray(f.attachments) ? f.attachments : [];
    const shown = list.map(renderAttachment).filter(Boolean);
    if (!shown.length) return null;
    const text = (f.text || "").trim();
    if (list.some((a) => a && (text === a.name || text === a.url || text === (a.name + ": " + a.url)))) body.classList.add("filename");
    const box = el("div", "attachments");
    box.append(...shown);
    return box;
  }

  // renderAttachment is one file: an image as a thumbnail that opens it
  // whole, anything else as a link with its name and size. Every part is
  // made with textContent and attributes, never as HTML.
  function renderAttachment(att) {
    if (!att || typeof att !== "object") return null;
    const url = safeURL(att.url);
    if (!url) return null;
    let name = String(att.name || "");
    if (!name) { try { name = decodeURIComponent(new URL(url).pathname.split("/").pop()); } catch (err) { name = ""; } }
    name = name || "file";
    const link = el("a", "attachment");
    link.href = url; link.target = "_blank"; link.rel = "noopener noreferrer"; link.referrerPolicy = "no-referrer";
    link.title = name;
    const fileLink = () => {
      link.className = "attachment file";
      const icon = el("span", "att-icon"); icon.setAttribute("aria-hidden", "true");
      link.replaceChildren(icon, el("span", "att-name", name));
      if (att.size > 0) link.appendChild(el("span", "att-size", fmtSize(att.size)));
    };
    if (!isImage(att, url)) { fileLink(); return link; }
    link.className = "attachment image";
    const img = el("img");
    img.alt = name; img.loading = "lazy"; img.decoding = "async"; img.referrerPolicy = "no-referrer";
    img.src = url;
    // An image that cannot be shown (gone, refused) is a link after all.
    img.addEventListener("error", fileLink, { once: true });
    // The picture grows its message once loaded: a list that was at the
    // bottom before stays there.
    img.addEventListener("load", () => {
      const list = $("messages");
      if (list.scrollHeight - list.scrollTop - list.clientHeight - img.offsetHeight < 40) list.scrollTop = list.scrollHeight;
    }, { once: true });
    link.appendChild(img);
    return link;
  }
})();
