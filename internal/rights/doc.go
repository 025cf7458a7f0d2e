// Package rights owns data-subject rights requests end to end — access,
// portability, rectification, restriction, objection and erasure (GDPR
// Art. 15–21) — with their state machine, deadlines, identity
// verification and staff review, and the export and erasure engine that
// walks the personal-data registry. Its tables are rights_requests,
// rights_exports and rights_erasures.
//
// # The engine walks the registry
//
// Export and erasure know no table by name. For every table the registry
// declares personal, export selects every declared column where the
// subject column is the subject (or an id merged into it), opens sealed
// columns with the keyring (a destroyed key shows the field as erased),
// masks hashed columns, and gives each row its source (the source column
// or the table's fixed source, J6) and the policy version it was collected
// under (the version column, else inferred from the row's first timestamp
// and the publication history, and labelled so). Datasets carry the
// registry's stable dataset names, never table names. Primary keys and
// column types are read from the live schema once, so a row can be named
// as an item ("dataset/key") and a column emptied in place.
//
// Packages whose tables need more than SQL register a Holder (and
// optionally an Exporter) with Service.Register: the engine registers its
// own for subjects (erasure tombstones the subject: the address goes, the
// id stays, so the ledger and other rows can still name it), data keys
// (destroyed, never exported), its requests (the record stays, the
// subject's words go) and its exports (always deleted). A test fails if
// any registered personal table is skipped.
//
// # Erasure
//
// Scopes: account (everything), category (the fields or categories named —
// a table whose personal columns are all covered loses its rows, others
// have the columns emptied), item (one row, by the key the access report
// shows; other subjects' rows are indistinguishable from missing ones) and
// content (rows of tables holding comments, posts, photos or videos).
// Exemptions are applied and explained: tables the registry marks
// KeptBecause (the audit log, proof of consent, the record of requests)
// stay, with their legal obligation; rows of categories whose retention is
// archive stay when the policy lists the archive exemption (J19: JMIR's
// published articles); a legal hold refuses the erasure with the staff's
// reason. Erasure destroys the data key of every category it erased
// completely — a key still sealing kept data stays, so kept data stays
// readable — and every stored export.
//
// After erasing, the engine queries every table of the plan again, and
// checks every destroyed key, and records the verification in the request
// and the audit log; anything left is an error, so the request stays in
// progress and the job runner retries. Each table is erased in its own
// transaction and every step is idempotent: an erasure that crashes
// midway is finished by the retry.
//
// An account is erased in two phases so that the completion notice reaches
// the address before the address is erased: first everything but the
// outbox and the subject's address; then, once the notice left the outbox
// (sent, held for the console without SMTP, failed for good, or after
// Config.NoticeWait), every step again, the outbox, the address and the
// keys.
//
// Under age (J26): when staff mark a member under the policy's minimum age,
// their account is erased like a request, except that the archive
// exemption is not applied: the policy promises that a child's data is
// deleted once known, and an archive of the public record does not need a
// child's contribution badly enough to outweigh that. Legal obligations
// (the pseudonymous audit trail, proof of consent) are still kept.
//
// # The erasure ledger and reapply
//
// Every erasure is recorded pseudonymously (subject id, scope, time) in
// rights_erasures and appended to Config.LedgerPath, a JSON-lines file
// synced before the request completes. A database restored from a backup
// has forgotten later erasures, but the file has not: `steward rights
// reapply` reads both, and for each entry erases again (rows deleted,
// keys destroyed). Keep the file off the backup volume; with several
// processes, give each its own file (or one shared path) and pass every
// file to reapply.
//
// # Requests
//
// received → verified → in_progress → completed | refused; a request whose
// identity is never proved expires after Config.UnverifiedTTL. The due
// date is one calendar month from receipt (clock.AddMonths); staff may
// extend it by up to two further months in all, only while the first
// month runs, with a reason the subject is told. Every transition is
// audited; the subject is mailed on receipt, extension, completion,
// refusal and expiry (transitions within one moment share a mail), and the
// completion of an account erasure is mailed before the address goes.
//
// Members file signed in; access, portability and erasure also need
// re-authentication (Requester.Reauthenticate: a login within the
// privileged window, or the password). People without an account file by
// email: an 8-digit code, stored only as a hash, single use, valid for the
// policy's code_ttl, with the policy's max_attempts; the answer is the same
// whether the address is known or not (an unknown one becomes an
// email-only subject, which is what a requester is). Filing is limited per
// client network and per address, so the form cannot flood a mailbox.
//
// What runs at once: restriction (and lifting one's own), objections (all
// take effect at once; an objection to direct marketing also sets marketing
// suppression, completes immediately and cannot be refused; others wait
// for staff, who uphold them or refuse with the compelling grounds, which
// lifts them). Rectifications wait for staff, optionally with processing
// restricted meanwhile; approval writes the corrected values where the
// subject has exactly one row holding the field, and a restriction placed
// for the review is lifted only after the subject was told. Access and
// portability run as jobs with progress; the ZIP is sealed under the
// subject's "rights-export" key and downloadable for Config.ExportTTL, by
// the session that asked (another session must re-authenticate) or, for
// email requesters, by the bearer of the token the verification returned.
// An erasure of an ordinary member runs without staff; a staff account's
// waits for another staff member's approval.
//
// Portability (Art. 20) covers what the subject provided (origin provided)
// in categories used by a consent- or contract-based purpose, never
// hashes, plus consent records; access covers everything. The ZIP holds
// index.html, data.json with data.schema.json (JSON Schema 2020-12) and a
// CSV per dataset, and the subject's uploads under files/ with names made
// safe (SafeName). Recipients are those the policy declares for the
// purposes that used the data, labelled "declared": there is no
// disclosure register yet.
package rights
