// ESLint (flat config) for the page's code: the recommended rules, browser and worker globals for src/, Node's for
// the build script; `make lint` runs it with Prettier's check (.prettierrc.json: 120 columns, as ruff.toml).
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['dist/', 'models/', 'node_modules/'] },
  js.configs.recommended,
  {
    files: ['src/**/*.js'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.browser, ...globals.worker } },
  },
  {
    files: ['*.js', '*.mjs'],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: globals.node },
  },
  {
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true }],
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
      eqeqeq: ['error', 'smart'],
    },
  },
];
