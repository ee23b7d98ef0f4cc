const app = require('../src/app');

describe('app', () => {
  test('mounts the users router', () => {
    const mounted = app._router.stack.some((layer) => layer.regexp && layer.regexp.test('/users'));
    expect(mounted).toBe(true);
  });
});
