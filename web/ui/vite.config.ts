// The web app's build: hashed assets under /assets, gzip and brotli copies beside them
// (the server picks one by Accept-Encoding), the output directory given by the web
// crate's build script (KOLOKOL_UI_OUT).
import { fileURLToPath, URL } from "node:url";
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";
import { compression } from "vite-plugin-compression2";

export default defineConfig({
  plugins: [
    vue(),
    compression({ algorithms: ["gzip", "brotliCompress"], threshold: 512, deleteOriginalAssets: false }),
  ],
  // vue-i18n's feature flags: the composition API only, no devtools in production.
  define: { __VUE_I18N_FULL_INSTALL__: true, __VUE_I18N_LEGACY_API__: false, __INTLIFY_PROD_DEVTOOLS__: false },
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  build: {
    outDir: process.env.KOLOKOL_UI_OUT ?? "dist",
    emptyOutDir: true,
    target: "es2022",
    assetsDir: "assets",
    chunkSizeWarningLimit: 600,
    reportCompressedSize: false,
  },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true }, "/sip": { target: "ws://127.0.0.1:8080", ws: true } } },
});
