import { Hono } from 'hono';
import users from './routes/users';

const app = new Hono();

app.get('/health', (c) => c.json({ ok: true }));
app.route('/users', users);

export default app;
