// The card form (fields and lists), read once per session: the table's headers, the
// card's inputs and which values are phone numbers all come from it.
import { defineStore } from "pinia";
import { computed, ref } from "vue";
import { api, ok, type Form } from "@/api/client";

export const useForm = defineStore("form", () => {
  const form = ref<Form | null>(null);
  let loading: Promise<Form> | undefined;

  function load(): Promise<Form> {
    loading ??= ok(api.GET("/api/v1/form")).then((f) => (form.value = f));
    return loading;
  }

  const byLatin = computed(() => new Map((form.value?.fields ?? []).map((f) => [f.latin, f])));
  const phoneFields = computed(() => (form.value?.fields ?? []).filter((f) => f.kind === "phone").map((f) => f.latin));
  return { form, load, byLatin, phoneFields };
});

/** A value as the table and the card show it. */
export function display(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(display).join(", ");
  return String(value);
}
