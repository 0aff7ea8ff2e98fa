"""Hands-free: spoken questions (voice activity detection + offline speech recognition on the Neon microphone or a
local one) and spoken answers (a local TTS, sentence by sentence). Needs the `speech` extra; nothing leaves the
machine."""
