// The reachability test's workload: two of the four dependencies are loaded
// (debug pulls in ms); kind-of and left-pad stay on disk, never required.
const debug = require('debug');
const isNumber = require('is-number');

const log = debug('reach');
console.log(`is-number(42)=${isNumber(42)} debug=${typeof log}`);
