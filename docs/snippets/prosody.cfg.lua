-- Switchboard on Prosody: add to prosody.cfg.lua, after your VirtualHost.

-- Switchboard's external component (XEP-0114). Its puppets are
-- name@bridge.example.org. Prosody listens for components on
-- 127.0.0.1:5347 (component_ports, component_interfaces).
Component "bridge.example.org"
	component_secret = "CHANGE-ME-component-secret"

-- The rooms. muc_mam archives them, which gives every groupchat
-- message a stanza-id (XEP-0359): Switchboard uses it to match edits,
-- replies, reactions and retractions to the messages it bridged.
Component "conference.example.org" "muc"
	modules_enabled = { "muc_mam" }
	muc_log_by_default = true
