// Stylesheets are bundled by esbuild (console/build.ts) into assets/app.css.
declare module '*.css';
