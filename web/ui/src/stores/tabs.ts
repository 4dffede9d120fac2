// The workspace's tabs: the partner table is always open; cards, events and tasks open
// beside it and stay alive (KeepAlive) while the operator switches between them.
import { defineStore } from "pinia";
import { computed, ref } from "vue";

export type Tab =
  | { key: "partners"; kind: "partners" }
  | { key: `card-${number}`; kind: "card"; partnerId: number; callId: string | null; party: string }
  | { key: "events"; kind: "events" }
  | { key: "tasks"; kind: "tasks" };

const PARTNERS: Tab = { key: "partners", kind: "partners" };
/** Beyond this many, the oldest card tab that is not active gives way. */
const MAX_TABS = 12;

export const useTabs = defineStore("tabs", () => {
  const tabs = ref<Tab[]>([PARTNERS]);
  const active = ref<Tab["key"]>("partners");
  const current = computed(() => tabs.value.find((t) => t.key === active.value) ?? PARTNERS);

  function open(tab: Tab) {
    const existing = tabs.value.findIndex((t) => t.key === tab.key);
    if (existing >= 0) tabs.value[existing] = tab;
    else {
      tabs.value.push(tab);
      while (tabs.value.length > MAX_TABS) {
        const oldest = tabs.value.findIndex((t) => t.kind === "card" && t.key !== tab.key);
        if (oldest < 0) break;
        tabs.value.splice(oldest, 1);
      }
    }
    active.value = tab.key;
  }

  function openCard(partnerId: number, call?: { callId: string; party: string }) {
    open({ key: `card-${partnerId}`, kind: "card", partnerId, callId: call?.callId ?? null, party: call?.party ?? "" });
  }

  function close(key: Tab["key"]) {
    if (key === "partners") return;
    const at = tabs.value.findIndex((t) => t.key === key);
    if (at < 0) return;
    tabs.value.splice(at, 1);
    if (active.value === key) active.value = (tabs.value[Math.max(0, at - 1)] ?? PARTNERS).key;
  }

  return { tabs, active, current, open, openCard, close };
});
