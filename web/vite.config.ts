import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The console is served by `tianshu serve` from files embedded in the
// binary (web/embed.go): everything is bundled, nothing comes from a CDN,
// and asset names carry a content hash so they can be cached for ever.
// The staleness test builds into a temporary folder with --outDir.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    // No module-preload polyfill: it would be an inline script, which the
    // Content-Security-Policy (script-src 'self') forbids.
    modulePreload: { polyfill: false },
  },
  server: {
    // `npx vite` (development, hot reload) sends the action API (POST /)
    // and the platform's other routes to a `tianshu serve` on :8080, and
    // serves the console itself.
    proxy: {
      "^/(files|objects|push)/": "http://127.0.0.1:8080",
      "^/$": {
        target: "http://127.0.0.1:8080",
        bypass: (req) => (req.method === "POST" ? undefined : req.url),
      },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    // jsdom tests of whole pages take seconds on a loaded 2-core machine; the
    // default 5 s cuts them off there (a guard against a hang, not a speed check).
    testTimeout: 30000,
  },
});
