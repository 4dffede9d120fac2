// The one live socket of the app. Every screen listens here instead of polling: call and
// queue events as they are stored, reminders, and "resync" — sent after a reconnect or a
// lag, when a screen must reload what it shows because events may have been missed.
import { defineStore } from "pinia";
import { ref } from "vue";
import type { CallEvent, LiveMessage, QueueEvent, Reminder } from "./protocol";

type Listeners = {
  call: (e: CallEvent) => void;
  queue: (e: QueueEvent) => void;
  reminder: (r: Reminder) => void;
  resync: () => void;
  /** Something changed among the queues and operators this user may not see in detail. */
  floor: () => void;
};

const BACKOFF_MS = [500, 1000, 2000, 5000, 10000];

export const useLive = defineStore("live", () => {
  const connected = ref(false);
  /** Set once the first connection opened: a later "offline" is a real gap. */
  const everConnected = ref(false);
  const listeners: { [K in keyof Listeners]: Set<Listeners[K]> } = {
    call: new Set(),
    queue: new Set(),
    reminder: new Set(),
    resync: new Set(),
    floor: new Set(),
  };
  let socket: WebSocket | undefined;
  let attempt = 0;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let wanted = false;

  function on<K extends keyof Listeners>(kind: K, f: Listeners[K]): () => void {
    listeners[kind].add(f);
    return () => listeners[kind].delete(f);
  }

  function emit<K extends keyof Listeners>(kind: K, ...args: Parameters<Listeners[K]>) {
    for (const f of listeners[kind]) (f as (...a: Parameters<Listeners[K]>) => void)(...args);
  }

  function dispatch(message: LiveMessage) {
    switch (message.type) {
      case "call":
        emit("call", (message as { event: CallEvent }).event);
        break;
      case "queue":
        emit("queue", (message as { event: QueueEvent }).event);
        break;
      case "reminder":
        emit("reminder", (message as { event: Reminder }).event);
        break;
      case "floor_changed":
        emit("floor");
        break;
      case "lagged":
        emit("resync");
        break;
    }
  }

  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/live`);
    socket = ws;
    ws.onopen = () => {
      const reconnected = everConnected.value;
      connected.value = everConnected.value = true;
      attempt = 0;
      if (reconnected) emit("resync");
    };
    ws.onmessage = (m) => {
      try {
        dispatch(JSON.parse(String(m.data)) as LiveMessage);
      } catch {
        /* a frame that is not ours to read */
      }
    };
    ws.onclose = () => {
      connected.value = false;
      if (socket === ws) socket = undefined;
      if (!wanted) return;
      const wait = BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)] ?? 10000;
      retry = setTimeout(open, wait);
    };
  }

  function start() {
    wanted = true;
    if (!socket) open();
  }

  function stop() {
    wanted = false;
    clearTimeout(retry);
    socket?.close();
    socket = undefined;
    connected.value = everConnected.value = false;
  }

  return { connected, everConnected, on, start, stop };
});
