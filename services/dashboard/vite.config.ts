// The dashboard is served by the gateway at /dashboard/ (services/gateway/routes/dashboard.py).
// `npm run dev` serves it on :5173 and passes API calls to a gateway on :8000 (`make run`).
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  base: "/dashboard/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 1200 },
  server: { proxy: { "/api": "http://127.0.0.1:8000", "/v1": "http://127.0.0.1:8000" } },
});
