// Audio devices and processing switches (KAW 12.2), kept per browser in localStorage:
// they belong to this computer's headset, not to the account.
import { defineStore } from "pinia";
import { ref, watch } from "vue";

function saved<T>(key: string, initial: T) {
  const raw = localStorage.getItem(`kolokol.${key}`);
  const value = ref<T>(raw === null ? initial : (JSON.parse(raw) as T));
  watch(value, (v) => localStorage.setItem(`kolokol.${key}`, JSON.stringify(v)));
  return value;
}

export const useDevices = defineStore("devices", () => {
  const microphone = saved("microphone", "");
  const speaker = saved("speaker", "");
  const ringer = saved("ringer", "");
  const echoCancellation = saved("echoCancellation", true);
  const noiseSuppression = saved("noiseSuppression", true);
  const autoGainControl = saved("autoGainControl", true);
  const available = ref<MediaDeviceInfo[]>([]);

  async function list() {
    available.value = (await navigator.mediaDevices?.enumerateDevices()) ?? [];
  }

  function constraints(): MediaTrackConstraints {
    return {
      ...(microphone.value ? { deviceId: { exact: microphone.value } } : {}),
      echoCancellation: echoCancellation.value,
      noiseSuppression: noiseSuppression.value,
      autoGainControl: autoGainControl.value,
    };
  }

  /** Plays `element` on the chosen output, where the browser lets pages choose. */
  async function route(element: HTMLAudioElement, which: "speaker" | "ringer") {
    const sink = which === "speaker" ? speaker.value : ringer.value;
    const el = element as HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> };
    if (sink && el.setSinkId) await el.setSinkId(sink).catch(() => undefined);
  }

  navigator.mediaDevices?.addEventListener("devicechange", list);
  return { microphone, speaker, ringer, echoCancellation, noiseSuppression, autoGainControl, available, list, constraints, route };
});
