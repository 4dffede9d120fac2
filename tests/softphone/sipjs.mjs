// A second, independent browser client for tests/softphone.rs: SIP.js instead of JsSIP,
// bundled by esbuild into dist/sipjs.js and loaded into a page on kolokol's origin. It
// signs in, takes the SIP identity from /api/v1/me/softphone, registers, and places,
// answers and ends calls; window.sipjs is what the test drives (its actions resolve to
// true, since SIP.js's own results do not serialise).
import { Inviter, Registerer, RegistererState, SessionState, UserAgent } from "sip.js";

const media = { constraints: { audio: true, video: false } };

window.sipjs = {
  registered: false,
  session: undefined,
  speaker: new Audio(),

  async start(login, password) {
    const signIn = await fetch("/api/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ login, password }),
    });
    if (!signIn.ok) throw new Error(`sign-in: ${signIn.status}`);
    const me = await (await fetch("/api/v1/me/softphone")).json();
    this.ua = new UserAgent({
      uri: UserAgent.makeURI(`sip:${me.extension}@${location.hostname}`),
      authorizationUsername: me.sip_username,
      authorizationHa1: me.ha1,
      transportOptions: { server: `ws://${location.host}/sip` },
      logLevel: "warn",
      delegate: { onInvite: (invitation) => this.track(invitation) },
    });
    await this.ua.start();
    this.registerer = new Registerer(this.ua);
    this.registerer.stateChange.addListener((s) => {
      this.registered = s === RegistererState.Registered;
    });
    await this.registerer.register();
  },

  track(session) {
    this.session = session;
    session.stateChange.addListener((s) => {
      if (s === SessionState.Established) {
        // Play what arrives, as a softphone does (Chrome measures audio energy at playout).
        this.speaker.srcObject = session.sessionDescriptionHandler.remoteMediaStream;
        this.speaker.play().catch(() => undefined);
      }
      if (s === SessionState.Terminated) this.session = undefined;
    });
  },

  call(number) {
    const target = UserAgent.makeURI(`sip:${number}@${location.hostname}`);
    const inviter = new Inviter(this.ua, target, { sessionDescriptionHandlerOptions: media });
    this.track(inviter);
    return inviter.invite().then(() => true);
  },

  ringing() {
    return this.session?.state === SessionState.Initial && !(this.session instanceof Inviter);
  },

  answer() {
    return this.session.accept({ sessionDescriptionHandlerOptions: media }).then(() => true);
  },

  inCall() {
    return this.session?.state === SessionState.Established;
  },

  hangup() {
    const s = this.session;
    const ending = s instanceof Inviter && s.state !== SessionState.Established ? s.cancel() : s.bye();
    return Promise.resolve(ending).then(() => true);
  },

  async inboundAudio() {
    const pc = this.session?.sessionDescriptionHandler?.peerConnection;
    if (!pc) return null;
    let found = null;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") found = s;
    });
    return found && { packetsReceived: found.packetsReceived, totalAudioEnergy: found.totalAudioEnergy ?? 0 };
  },
};
