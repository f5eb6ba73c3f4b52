// The test host lives in sandbox/testhost/ (the demo and the benches boot it too, and
// sandbox/ imports nothing from test/); the tests import it from here.
export { TestHost, type ExecResult } from '../../sandbox/testhost/testhost.js';
