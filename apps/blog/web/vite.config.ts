import { defineConfig } from 'vite'

// The admin page: built into web/dist, served by the service at /admin/.
export default defineConfig({
  root: import.meta.dirname,
  base: '/admin/',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: false },
  server: { proxy: { '^/(auth|users|posts|comments|admin/(trash|purge|audit))': 'http://127.0.0.1:3000' } },
})
