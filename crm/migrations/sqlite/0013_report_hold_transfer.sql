-- Hold and transfers of queue calls (the engine's hold_started, hold_ended and
-- transferred events). Events journaled before had none: no rebuild is needed.
ALTER TABLE report_queue_cells ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
ALTER TABLE report_queue_cells ADD COLUMN hold_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE report_queue_cells ADD COLUMN transferred BIGINT NOT NULL DEFAULT 0;
ALTER TABLE report_operator_cells ADD COLUMN hold_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE report_operator_cells ADD COLUMN transferred BIGINT NOT NULL DEFAULT 0;
ALTER TABLE report_operator_queue_cells ADD COLUMN transferred BIGINT NOT NULL DEFAULT 0;
