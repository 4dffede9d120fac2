//! kolokol-media: RTP, G.711, recording and prompts arrive with the calls issue; nothing here yet.
