//! kolokol-media: moves and records audio. Knows nothing of SIP, SQL or HTTP.
//!
//! - [`g711`]: µ-law / A-law tables.
//! - [`sdp`]: the audio part of SDP offers and answers.
//! - [`rtp`]: in-place RTP header access.
//! - [`rtcp`]: receive statistics and sender/receiver reports.
//! - [`recorder`]: stereo WAV recording aligned on wall-clock time.
//! - [`relay`]: the per-call bridge tasks that relay RTP between two endpoints, and the
//!   player that sends a sound to an endpoint waiting alone.
//! - [`sound`]: music on hold and tones, decoded or generated at 8 kHz.
//! - [`prompts`]: spoken queue announcements (espeak-ng at first run, or files).
//! - [`webrtc`]: browser legs (ICE-lite, DTLS-SRTP) gatewayed to plain RTP for the relay.

pub mod g711;
pub mod prompts;
pub mod recorder;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sound;
pub mod webrtc;

pub use recorder::{repair, Channel, Recorder, RecordingInfo};
pub use relay::{
    BridgeId, Endpoint, EndpointId, Media, MediaConfig, MediaError, MediaEvent, Remote, Side,
};
pub use sdp::{AudioDescription, Codec, Direction, SdpError};
pub use sound::Sound;
