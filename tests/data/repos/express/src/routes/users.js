const express = require('express');
const db = require('../db');

const router = express.Router();

router.get('/', async (req, res, next) => {
  try {
    const users = await db('users').select('id', 'email', 'name').orderBy('id');
    res.json({ users });
  } catch (err) {
    next(err);
  }
});

router.get('/:id', async (req, res, next) => {
  const id = Number(req.params.id);
  if (!Number.isInteger(id) || id <= 0) {
    res.status(400).json({ error: 'id must be a positive integer' });
    return;
  }
  try {
    const user = await db('users').where({ id }).first();
    if (!user) {
      res.status(404).json({ error: `user ${id} not found` });
      return;
    }
    res.json(user);
  } catch (err) {
    next(err);
  }
});

module.exports = router;
