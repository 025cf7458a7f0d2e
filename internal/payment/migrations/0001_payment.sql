-- Card payment methods of a subject, as the payment processor reports
-- them: each value the policy declares is sealed under the subject's key
-- for its category (NULL when the policy does not declare it). The
-- processor's method id is found again (to update or delete the row) by
-- its blind index, never by the value.
CREATE TABLE payment_methods (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	method_index BYTEA NOT NULL UNIQUE,
	card_token_sealed BYTEA,
	card_brand_sealed BYTEA,
	card_last4_sealed BYTEA,
	billing_address_sealed BYTEA,
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_methods_subject ON payment_methods (subject_id);

-- Which subject a processor's customer is: the blind index of the
-- customer id, and nothing else of the customer.
CREATE TABLE payment_customers (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	customer_index BYTEA NOT NULL UNIQUE,
	linked_by TEXT NOT NULL CHECK (linked_by IN ('metadata', 'email', 'operator')),
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_customers_subject ON payment_customers (subject_id);

-- Invoices paid, kept only where the policy declares the field invoice:
-- number, amount, currency and date sealed together under the subject's
-- key for the field's category.
CREATE TABLE payment_invoices (
	id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	invoice_index BYTEA NOT NULL UNIQUE,
	invoice_sealed BYTEA NOT NULL,
	policy_version INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_invoices_subject ON payment_invoices (subject_id);

-- Events already processed, by the processor's event id (not personal):
-- a delivery of the same event again stores nothing.
CREATE TABLE payment_events (
	event_id TEXT PRIMARY KEY,
	event_type TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_events_received ON payment_events (received_at);

-- Events for a customer no subject matches, held until the customer is
-- linked or expires_at passes: the declared fields sealed under a key of
-- the held item's own, the customer's blind index to release them by,
-- and the blind index of the object they concern (a payment method) so a
-- later detachment drops them too.
CREATE TABLE payment_quarantine (
	id TEXT PRIMARY KEY,
	event_id TEXT NOT NULL,
	event_type TEXT NOT NULL,
	customer_index BYTEA NOT NULL,
	object_index BYTEA NOT NULL,
	fields_sealed BYTEA NOT NULL,
	reason TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);
CREATE INDEX payment_quarantine_customer ON payment_quarantine (customer_index);
CREATE INDEX payment_quarantine_object ON payment_quarantine (object_index);
CREATE INDEX payment_quarantine_expires ON payment_quarantine (expires_at);
