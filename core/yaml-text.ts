// The YAML parser, in a module of its own so that the paths that rarely need it (a stack
// manifest, a revision record written by an old version) import it on demand:
// `await import('./yaml-text.js')`. A static import here, not `import('yaml')` there: the
// package's CommonJS build, which the bundles carry, has no named exports under a dynamic
// import (`YAML.parse is not a function` in dist/bin), while this module is the same in
// both.
import { parse } from 'yaml';

export function parseYaml(text: string): unknown {
  return parse(text);
}
