-- 0013: room on the wallets' pages for their updates. Every bet updates its wallet row; on a
-- full page the new row version goes to another page, and every index of the table gets a new
-- entry for it. With 30% of each page kept free the new version stays on its page (a HOT
-- update: no index write, less WAL), and autovacuum visits the table after 2% of its rows
-- changed instead of 20%, so the room is reclaimed before it runs out. Applies to pages
-- written from now on (`VACUUM FULL wallets` repacks a table written before).
ALTER TABLE wallets SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02);
