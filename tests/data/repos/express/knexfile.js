module.exports = {
  client: 'better-sqlite3',
  connection: { filename: process.env.DB_FILE || './dev.sqlite3' },
  useNullAsDefault: true,
  migrations: { directory: './migrations' },
};
