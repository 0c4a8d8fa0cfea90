-- PostgreSQL's migration 000011 adds change notifications for the instances' memory. SQLite
-- serves one process, whose writes update its memory directly: nothing to add here. The
-- migration exists so that both backends count the same migrations.
SELECT 1;
