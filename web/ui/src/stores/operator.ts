// The signed-in operator's state (SPEC §1.5) and the floor around them: colleagues'
// states and today's counters, reloaded when the live socket says something changed.
import { defineStore } from "pinia";
import { computed, ref } from "vue";
import { api, ok, type OperatorView } from "@/api/client";
import { useLive } from "@/live/socket";
import { useSession } from "./session";

export const useOperator = defineStore("operator", () => {
  const session = useSession();
  const live = useLive();
  const operators = ref<OperatorView[]>([]);
  const reasons = ref<string[]>([]);
  /** When the list was read, against which `in_state_ms` counts. */
  const readAt = ref(0);
  const error = ref("");
  let loading: Promise<void> | undefined;
  let again = false;

  const mine = computed(() => operators.value.find((o) => o.id === session.me?.login) ?? null);
  const colleagues = computed(() => operators.value.filter((o) => o.id !== session.me?.login));
  /** When the current state began, in this browser's clock. */
  const stateSince = computed(() => (mine.value ? readAt.value - mine.value.in_state_ms : 0));

  async function load() {
    // One read at a time; a change meanwhile asks for one more read after it.
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        operators.value = await ok(api.GET("/api/v1/operators"));
        readAt.value = Date.now();
      } while (again);
    })().finally(() => (loading = undefined));
    return loading;
  }

  async function act(action: "login" | "logout" | "resume" | "pause", reason?: string) {
    const login = session.me?.login;
    if (!login) return;
    error.value = "";
    const params = { params: { path: { id: login } } };
    try {
      if (action === "pause") await ok(api.POST("/api/v1/operators/{id}/pause", { ...params, body: { reason: reason ?? "" } }));
      else if (action === "login") await ok(api.POST("/api/v1/operators/{id}/login", params));
      else if (action === "resume") await ok(api.POST("/api/v1/operators/{id}/resume", params));
      else await ok(api.POST("/api/v1/operators/{id}/logout", params));
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
    await load();
  }

  /** "В работу": back from a pause, or in for the day. */
  const goToWork = () => act(mine.value?.state === "paused" ? "resume" : "login");

  async function start() {
    reasons.value = await ok(api.GET("/api/v1/pause-reasons"));
    live.on("queue", () => void load());
    live.on("floor", () => void load());
    live.on("resync", () => void load());
    await load();
  }

  return { operators, mine, colleagues, reasons, stateSince, error, start, load, goToWork, pause: (r: string) => act("pause", r), endDay: () => act("logout") };
});
