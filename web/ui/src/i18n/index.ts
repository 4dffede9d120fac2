// i18n: Russian and English, chosen per user (their saved setting, else the browser's
// language). Keys are typed from the Russian catalogue, in scripts and templates alike.
import { createI18n } from "vue-i18n";
import { ru } from "./ru";
import { en } from "./en";

export type Messages = typeof ru;
export type Language = "ru" | "en";
export const LANGUAGES: readonly Language[] = ["ru", "en"];

declare module "vue-i18n" {
  export interface DefineLocaleMessage extends Messages {}
}

/** The browser's preferred language among ours (Russian when it prefers neither). */
export function browserLanguage(): Language {
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = tag.toLowerCase().split("-")[0];
    if (base === "ru" || base === "en") return base;
  }
  return "ru";
}

const SAVED = "kolokol.language";

/** Before sign-in: what this browser chose last, else its language. */
export function initialLanguage(): Language {
  const saved = localStorage.getItem(SAVED);
  return saved === "ru" || saved === "en" ? saved : browserLanguage();
}

export const i18n = createI18n<[Messages], Language, false>({
  legacy: false,
  locale: initialLanguage(),
  fallbackLocale: "ru",
  messages: { ru, en },
  missingWarn: true,
  fallbackWarn: true,
});

export function setLanguage(language: Language) {
  i18n.global.locale.value = language;
  localStorage.setItem(SAVED, language);
  document.documentElement.lang = language;
}
