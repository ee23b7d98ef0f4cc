import { describe, expect, it } from 'vitest';
import users from './users';

describe('users', () => {
  it('lists users', async () => {
    const res = await users.request('/');
    expect(res.status).toBe(200);
  });

  it('refuses a bad id', async () => {
    const res = await users.request('/abc');
    expect(res.status).toBe(400);
  });
});
