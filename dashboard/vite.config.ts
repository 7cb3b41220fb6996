import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// Served by the origin at /dashboard/ (unknown paths there fall back to index.html).
export default defineConfig({
  base: '/dashboard/',
  plugins: [svelte()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
  server: {
    // `npm run dev` / `vite preview` against a local origin (SMO1_ORIGIN_URL): same-origin for the session cookie and the Origin check.
    proxy: { '/v1': process.env.SMO1_ORIGIN_URL ?? 'http://127.0.0.1:8080' },
  },
});
