//! What call control needs from the media plane. A trait so the state machine runs in
//! tests without sockets; the binary passes `kolokol_media::relay::Media`.

use kolokol_media::relay::{BridgeId, Endpoint, EndpointId, Media, MediaError, Remote, Side};
use kolokol_media::Sound;
use std::path::PathBuf;
use std::sync::Arc;

pub trait MediaControl: Send + Sync {
    fn open_endpoint(&self) -> Result<Endpoint, MediaError>;
    fn set_remote(&self, id: EndpointId, remote: Remote);
    fn bridge(
        &self,
        left: EndpointId,
        right: EndpointId,
        recording: Option<(String, PathBuf)>,
    ) -> Result<BridgeId, MediaError>;
    fn replace(&self, bridge: BridgeId, side: Side, endpoint: EndpointId)
        -> Result<(), MediaError>;
    fn close_bridge(&self, bridge: BridgeId);
    fn close_endpoint(&self, id: EndpointId);
    /// Plays a sound to an endpoint until it is bridged or closed.
    fn play(&self, id: EndpointId, sound: Arc<Sound>) -> Result<(), MediaError>;
    /// Plays an announcement once, then music, until the endpoint is bridged or closed.
    fn announce(
        &self,
        id: EndpointId,
        announcement: Arc<Sound>,
        music: Arc<Sound>,
    ) -> Result<(), MediaError>;
}

impl MediaControl for Media {
    fn open_endpoint(&self) -> Result<Endpoint, MediaError> {
        Media::open_endpoint(self)
    }
    fn set_remote(&self, id: EndpointId, remote: Remote) {
        Media::set_remote(self, id, remote)
    }
    fn bridge(
        &self,
        left: EndpointId,
        right: EndpointId,
        recording: Option<(String, PathBuf)>,
    ) -> Result<BridgeId, MediaError> {
        Media::bridge(self, left, right, recording)
    }
    fn replace(
        &self,
        bridge: BridgeId,
        side: Side,
        endpoint: EndpointId,
    ) -> Result<(), MediaError> {
        Media::replace(self, bridge, side, endpoint)
    }
    fn close_bridge(&self, bridge: BridgeId) {
        Media::close_bridge(self, bridge)
    }
    fn close_endpoint(&self, id: EndpointId) {
        Media::close_endpoint(self, id)
    }
    fn play(&self, id: EndpointId, sound: Arc<Sound>) -> Result<(), MediaError> {
        Media::play(self, id, sound)
    }
    fn announce(
        &self,
        id: EndpointId,
        announcement: Arc<Sound>,
        music: Arc<Sound>,
    ) -> Result<(), MediaError> {
        Media::announce(self, id, announcement, music)
    }
}
