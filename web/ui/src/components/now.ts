import { ref, type Ref } from "vue";

// One clock for every timer on the page, ticking once a second while anyone shows one.
const now = ref(Date.now());
let users = 0;
let tick: ReturnType<typeof setInterval> | undefined;

export function useNow(): Ref<number> {
  return now;
}

export function startClock() {
  if (users++ === 0) tick = setInterval(() => (now.value = Date.now()), 1000);
}

export function stopClock() {
  if (--users === 0) clearInterval(tick);
}
