// kolokol's web app: the sign-in screen and the operator workspace.
import { createApp } from "vue";
import { createPinia } from "pinia";
import { createRouter, createWebHistory } from "vue-router";
import App from "./App.vue";
import { i18n } from "./i18n";
import { whenSignedOut } from "./api/client";
import { useSession } from "./stores/session";
import "./styles.css";

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", component: () => import("./screens/workspace/Workspace.vue") },
    { path: "/login", component: () => import("./screens/login/LoginScreen.vue") },
    { path: "/:rest(.*)*", redirect: "/" },
  ],
});

const pinia = createPinia();
const app = createApp(App).use(pinia).use(i18n).use(router);
const session = useSession(pinia);

router.beforeEach(async (to) => {
  if (!session.checked) await session.restore().catch(() => undefined);
  if (!session.me && to.path !== "/login") return "/login";
  if (session.me && to.path === "/login") return "/";
  return true;
});

whenSignedOut(() => {
  session.forget();
  void router.replace("/login");
});

app.mount("#app");
