// Who is signed in, their settings, and signing in and out.
import { defineStore } from "pinia";
import { ref } from "vue";
import { api, ok, ApiError, type Schemas } from "@/api/client";
import { browserLanguage, setLanguage, type Language } from "@/i18n";

export type Me = Schemas["Me"];

export const useSession = defineStore("session", () => {
  const me = ref<Me | null>(null);
  const checked = ref(false);

  function adopt(user: Me) {
    me.value = user;
    const saved = user.settings.language;
    setLanguage(saved === "ru" || saved === "en" ? saved : browserLanguage());
  }

  /** The session cookie's user, if the cookie is still good. */
  async function restore() {
    try {
      const { signed_in } = await ok(api.GET("/api/v1/session"));
      if (signed_in) adopt(await ok(api.GET("/api/v1/me")));
      else me.value = null;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) throw e;
      me.value = null;
    } finally {
      checked.value = true;
    }
  }

  async function signIn(login: string, password: string) {
    await ok(api.POST("/api/v1/session", { body: { login, password } }));
    await restore();
  }

  async function signOut() {
    await api.POST("/api/v1/session/logout").catch(() => undefined);
    me.value = null;
  }

  /** The language chosen for this user, saved in their settings. */
  async function chooseLanguage(language: Language | null) {
    const saved = await ok(api.PATCH("/api/v1/me/settings", { body: { language } }));
    if (me.value) adopt({ ...me.value, settings: saved });
  }

  return { me, checked, restore, signIn, signOut, chooseLanguage, forget: () => (me.value = null) };
});
