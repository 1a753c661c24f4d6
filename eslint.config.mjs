// ESLint (flat config): the recommended rules over every hand-written .js and .mjs file, each
// with the globals of where it runs. A .js file outside the areas below gets only the
// language's own globals (no console, no fetch), so a new one has to be placed in an area. Node
// scripts that drive a browser declare, in a `/* global */` comment, the page globals used by
// the functions they hand to page.evaluate and the like.
import js from '@eslint/js';
import globals from 'globals';

export default [
  {
    ignores: ['dist/', 'target/', 'node_modules/', 'models/.venv/', 'artifacts/', 'data/', 'bench/results/'],
  },
  js.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  // Node: the e2e tests and their harness, the benchmark drivers and servers, scripts.
  {
    files: ['**/*.mjs', 'scripts/**/*.js'],
    languageOptions: { globals: globals.node },
  },
  // Service workers: the product's, with the modules it imports (protocol.js, shared with the
  // page, uses nothing a service worker lacks), and the benchmark's.
  {
    files: ['worker/**/*.js', 'bench/bench.sw.js'],
    languageOptions: { globals: globals.serviceworker },
  },
  // Pages: the dashboard, the collector's fleet page, the benchmark page.
  {
    files: ['www/**/*.js', 'collector/src/fleet/page/**/*.js', 'bench/page.js'],
    languageOptions: { globals: globals.browser },
  },
  // The benchmark's dedicated workers, and the modules they share with its page and service
  // worker.
  {
    files: ['bench/*.worker.js', 'bench/engines.js', 'bench/measure.js'],
    languageOptions: { globals: globals.worker },
  },
];
