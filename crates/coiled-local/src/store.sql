PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS users(username TEXT PRIMARY KEY, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens(token TEXT PRIMARY KEY, username TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces(slug TEXT PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memberships(username TEXT NOT NULL, workspace TEXT NOT NULL, is_admin INTEGER NOT NULL, is_default INTEGER NOT NULL, PRIMARY KEY(username, workspace));
CREATE TABLE IF NOT EXISTS backend_options(workspace TEXT PRIMARY KEY, data TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clusters(
  id INTEGER PRIMARY KEY AUTOINCREMENT, workspace TEXT NOT NULL, name TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,
  state TEXT NOT NULL, reason TEXT NOT NULL, desired_workers INTEGER NOT NULL, scheduler_port INTEGER NOT NULL, give_public_ip INTEGER NOT NULL,
  options TEXT NOT NULL, firewall TEXT NOT NULL, firewall_source TEXT NOT NULL, tags TEXT NOT NULL, software TEXT,
  worker_instance_types TEXT NOT NULL, scheduler_instance_types TEXT NOT NULL, phase_at REAL, fail_reason TEXT, private_ip TEXT NOT NULL, public_ip TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS clusters_by_name ON clusters(workspace, name);
CREATE TABLE IF NOT EXISTS workers(id INTEGER PRIMARY KEY AUTOINCREMENT, cluster_id INTEGER NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
  created TEXT NOT NULL, updated TEXT NOT NULL, phase_at REAL, private_ip TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS workers_by_cluster ON workers(cluster_id);
CREATE TABLE IF NOT EXISTS states(id INTEGER PRIMARY KEY AUTOINCREMENT, cluster_id INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  state TEXT NOT NULL, reason TEXT NOT NULL, updated TEXT NOT NULL);
INSERT OR IGNORE INTO sqlite_sequence(name, seq) SELECT 'clusters', 99 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'clusters');
