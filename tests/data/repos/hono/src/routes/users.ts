import { Hono } from 'hono';

export interface User {
  id: number;
  email: string;
  name: string;
}

const users = new Hono();

users.get('/', (c) => c.json({ users: [] as User[] }));

users.get('/:id', (c) => {
  const id = Number(c.req.param('id'));
  if (!Number.isInteger(id) || id <= 0) {
    return c.json({ error: 'id must be a positive integer' }, 400);
  }
  return c.json({ error: `user ${id} not found` }, 404);
});

export default users;
