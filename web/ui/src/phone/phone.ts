// The softphone: JsSIP registers the signed-in user's extension over (secure) WebSocket
// with the key of their web session (never a typed SIP password), and carries one call at
// a time, plus a consultation call during an attended transfer. kolokol names its call in
// the INVITE (X-Kolokol-Call-Id), so the workspace opens the right card while it rings.
import { defineStore } from "pinia";
import { computed, markRaw, ref, shallowRef } from "vue";
import { C, UA, WebSocketInterface } from "jssip";
import type { RTCSession } from "jssip/lib/RTCSession";
import type { IncomingRTCSessionEvent, RTCSessionEvent } from "jssip/lib/UA";
import type { Schemas } from "@/api/client";
import { useDevices } from "./devices";
import { ringTone } from "./ring";

export type Registration = "none" | "connecting" | "registered" | "unregistered" | "failed";
export type LineState = "idle" | "incoming" | "calling" | "talking" | "held";

/** What the operator sees of the call on the line. */
export type Line = {
  state: LineState;
  /** The far party: the caller's number, or the number dialled. */
  party: string;
  name: string;
  /** kolokol's id of the call, when kolokol placed it to this phone. */
  callId: string | null;
  /** A click-to-call leg: kolokol dials `clickToCall` once this phone answers. */
  clickToCall: string | null;
  muted: boolean;
  startedAt: number;
};

export type RingingCall = { callId: string; party: string };

const idle = (): Line => ({ state: "idle", party: "", name: "", callId: null, clickToCall: null, muted: false, startedAt: 0 });

export const usePhone = defineStore("phone", () => {
  const devices = useDevices();
  const registration = ref<Registration>("none");
  const failure = ref("");
  const line = ref<Line>(idle());
  const consult = ref<{ target: string; state: LineState } | null>(null);
  const lastError = ref("");
  const ua = shallowRef<UA>();
  const session = shallowRef<RTCSession>();
  const consultSession = shallowRef<RTCSession>();
  let account: Schemas["Softphone"] | undefined;
  const ringingListeners = new Set<(c: RingingCall) => void>();

  const remote = document.createElement("audio");
  remote.autoplay = true;
  const ring = document.createElement("audio");
  ring.loop = true;
  ring.src = ringTone();

  function ringing(on: boolean) {
    if (on) void devices.route(ring, "ringer").then(() => ring.play().catch(() => undefined));
    else {
      ring.pause();
      ring.currentTime = 0;
    }
  }

  /** The server's STUN/TURN list as RTCPeerConnection takes it (no nulls). */
  function iceServers(): RTCIceServer[] {
    return (account?.ice_servers ?? []).map((s) => ({
      urls: s.urls,
      ...(s.username ? { username: s.username } : {}),
      ...(s.credential ? { credential: s.credential } : {}),
    }));
  }

  function options() {
    return {
      mediaConstraints: { audio: devices.constraints(), video: false },
      pcConfig: { iceServers: iceServers() },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
    };
  }

  function playRemote(pc: RTCPeerConnection) {
    pc.addEventListener("track", (e: RTCTrackEvent) => {
      remote.srcObject = e.streams[0] ?? new MediaStream([e.track]);
      void devices.route(remote, "speaker");
    });
  }

  function attach(s: RTCSession, start: Line) {
    session.value = markRaw(s);
    line.value = start;
    if (s.connection) playRemote(s.connection);
    s.on("peerconnection", (e) => playRemote(e.peerconnection));
    const set = (state: LineState) => {
      if (session.value === s) line.value = { ...line.value, state };
    };
    s.on("accepted", () => {
      ringing(false);
      line.value = { ...line.value, state: "talking", startedAt: Date.now() };
    });
    s.on("confirmed", () => set(line.value.state === "held" ? "held" : "talking"));
    s.on("hold", () => set("held"));
    s.on("unhold", () => set("talking"));
    const end = (cause?: string) => {
      ringing(false);
      if (session.value !== s) return;
      session.value = undefined;
      line.value = idle();
      if (cause) lastError.value = cause;
    };
    s.on("ended", () => end());
    s.on("failed", (e) => end(s.direction === "outgoing" ? String(e.cause) : undefined));
  }

  function start(me: Schemas["Softphone"]) {
    stop();
    account = me;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocketInterface(`${scheme}://${location.host}/sip`);
    const agent = new UA({
      sockets: [socket],
      uri: `sip:${me.extension}@${location.hostname}`,
      authorization_user: me.sip_username,
      realm: me.realm,
      ha1: me.ha1,
      display_name: me.name,
      register: true,
      session_timers: false,
      user_agent: "kolokol-web",
    });
    registration.value = "connecting";
    agent.on("registered", () => (registration.value = "registered"));
    agent.on("unregistered", () => (registration.value = "unregistered"));
    agent.on("registrationFailed", (e) => {
      registration.value = "failed";
      failure.value = String(e.cause ?? "");
    });
    agent.on("disconnected", () => {
      if (registration.value === "registered") registration.value = "connecting";
    });
    agent.on("newRTCSession", (e: RTCSessionEvent) => {
      if (e.originator !== "remote") return;
      incoming(e as IncomingRTCSessionEvent);
    });
    agent.start();
    ua.value = markRaw(agent);
  }

  function incoming(e: IncomingRTCSessionEvent) {
    if (session.value) {
      e.session.terminate({ status_code: 486 });
      return;
    }
    const from = e.request.from;
    const callId = e.request.getHeader("X-Kolokol-Call-Id") || null;
    const clickToCall = e.request.getHeader("X-Kolokol-Click-To-Call") || null;
    attach(e.session, {
      ...idle(),
      state: "incoming",
      party: clickToCall ?? from.uri.user ?? "",
      name: from.display_name ?? "",
      callId,
      clickToCall,
    });
    if (clickToCall && expected(clickToCall)) {
      // The operator asked for this call a moment ago: it rings their own phone.
      answer();
      return;
    }
    ringing(true);
    if (callId) for (const f of ringingListeners) f({ callId, party: from.uri.user ?? "" });
  }

  /** The click-to-call this browser just asked for: only its leg is answered unasked. */
  let asked: { digits: string; until: number } | null = null;
  const digits = (n: string) => n.replace(/\D/g, "");

  function expectClickToCall(number: string) {
    asked = { digits: digits(number), until: Date.now() + 30_000 };
  }

  function expected(number: string): boolean {
    const ok = asked !== null && asked.until > Date.now() && asked.digits === digits(number);
    if (ok) asked = null;
    return ok;
  }

  function stop() {
    session.value?.terminate();
    ua.value?.stop();
    ua.value = undefined;
    registration.value = "none";
    line.value = idle();
  }

  function reregister() {
    const agent = ua.value;
    if (!agent) return;
    if (!agent.isConnected()) agent.start();
    agent.register();
  }

  function call(number: string) {
    const target = number.trim();
    if (!target || !ua.value) return;
    if (session.value) {
      lastError.value = "busy";
      return;
    }
    lastError.value = "";
    const s = ua.value.call(`sip:${target}@${location.hostname}`, options());
    attach(s, { ...idle(), state: "calling", party: target });
  }

  function answer() {
    const s = session.value;
    if (s && line.value.state === "incoming") {
      ringing(false);
      s.answer(options());
    }
  }

  function hangup() {
    session.value?.terminate();
  }

  function reject() {
    session.value?.terminate({ status_code: 486 });
  }

  function toggleHold() {
    const s = session.value;
    if (!s?.isEstablished()) return;
    if (line.value.state === "held") s.unhold();
    else s.hold();
  }

  function toggleMute() {
    const s = session.value;
    if (!s) return;
    if (line.value.muted) s.unmute({ audio: true });
    else s.mute({ audio: true });
    line.value = { ...line.value, muted: !line.value.muted };
  }

  function dtmf(key: string) {
    const s = session.value;
    if (s?.isEstablished()) s.sendDTMF(key, { transportType: C.DTMF_TRANSPORT.RFC2833 });
  }

  const uri = (target: string) => `sip:${target.trim()}@${location.hostname}`;

  /** Blind transfer: kolokol takes the call to `target`; this phone is free at once. */
  function blindTransfer(target: string) {
    session.value?.refer(uri(target));
  }

  /** Attended transfer, step one: the caller waits on hold while we talk to `target`. */
  function startConsult(target: string) {
    const s = session.value;
    if (!s || !ua.value || consultSession.value) return;
    if (line.value.state !== "held") s.hold();
    const c = ua.value.call(uri(target), options());
    consultSession.value = markRaw(c);
    consult.value = { target: target.trim(), state: "calling" };
    if (c.connection) playRemote(c.connection);
    c.on("peerconnection", (e) => playRemote(e.peerconnection));
    c.on("accepted", () => consult.value && (consult.value = { ...consult.value, state: "talking" }));
    const end = () => {
      if (consultSession.value !== c) return;
      consultSession.value = undefined;
      consult.value = null;
    };
    c.on("ended", end);
    c.on("failed", end);
  }

  /** Step two: the caller and the colleague are joined; both our calls end. */
  function completeTransfer() {
    const s = session.value;
    const c = consultSession.value;
    if (!s || !c?.isEstablished()) return;
    s.refer(c.remote_identity.uri, { replaces: c });
  }

  /** Or back to the caller, ending the consultation. */
  function cancelConsult() {
    consultSession.value?.terminate();
    if (line.value.state === "held") session.value?.unhold();
  }

  function onRinging(f: (c: RingingCall) => void) {
    ringingListeners.add(f);
    return () => ringingListeners.delete(f);
  }

  const busy = computed(() => line.value.state !== "idle");

  return {
    registration, failure, line, consult, lastError, busy, session,
    start, stop, reregister, call, answer, hangup, reject, toggleHold, toggleMute, dtmf,
    blindTransfer, startConsult, completeTransfer, cancelConsult, onRinging, expectClickToCall,
  };
});

/** Hooks for the browser tests: what the phone is doing, and WebRTC's own counters. */
export function exposeForTests(phone: ReturnType<typeof usePhone>) {
  (window as unknown as { kolokol: unknown }).kolokol = {
    registered: () => phone.registration === "registered",
    inCall: () => phone.session?.isEstablished() ?? false,
    ringing: () => phone.line.state === "incoming",
    callId: () => phone.line.callId,
    session: () => phone.session,
    inboundAudio: async () => {
      const pc = phone.session?.connection;
      if (!pc) return null;
      let found: { packetsReceived?: number; audioLevel?: number; totalAudioEnergy?: number } | null = null;
      (await pc.getStats()).forEach((s: { type: string; kind?: string }) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") found = s as typeof found;
      });
      const f = found as { packetsReceived?: number; audioLevel?: number; totalAudioEnergy?: number } | null;
      return f && { packetsReceived: f.packetsReceived ?? 0, audioLevel: f.audioLevel ?? 0, totalAudioEnergy: f.totalAudioEnergy ?? 0 };
    },
  };
}
