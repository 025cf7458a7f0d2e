// Package schema is the one list of the modules of Steward's database:
// each package's migrations, in the order they apply, with the tables it
// declares in the personal-data registry. Migrating, checking the schema
// at start and building the registry all read this list, so a package
// added to one is added to all.
package schema

import (
	"steward/internal/activity"
	"steward/internal/audit"
	"steward/internal/consent"
	"steward/internal/content"
	"steward/internal/disclosure"
	"steward/internal/door"
	"steward/internal/identity"
	"steward/internal/jobs"
	"steward/internal/mail"
	"steward/internal/newsletter"
	"steward/internal/notice"
	"steward/internal/openid"
	"steward/internal/payment"
	"steward/internal/policy"
	"steward/internal/registry"
	"steward/internal/rights"
	"steward/internal/store"
	"steward/internal/subject"
	"steward/internal/support"
)

// Module is one package's part of the database: the migrations that make
// its tables and the registry's declarations of them.
type Module struct {
	Migrations store.Migrations
	Tables     []registry.Table
}

// Modules lists every package's module in the order its migrations apply:
// a module may use the tables of those before it (notice's second
// migration moves rows into a table of subject's).
func Modules() []Module {
	return []Module{
		{policy.Migrations(), policy.Tables()},
		{subject.Migrations(), subject.Tables()},
		{door.Migrations(), door.Tables()},
		{audit.Migrations(), audit.Tables()},
		{jobs.Migrations(), jobs.Tables()},
		{mail.Migrations(), mail.Tables()},
		{identity.Migrations(), identity.Tables()},
		{consent.Migrations(), consent.Tables()},
		{newsletter.Migrations(), newsletter.Tables()},
		{notice.Migrations(), notice.Tables()},
		{rights.Migrations(), rights.Tables()},
		{activity.Migrations(), activity.Tables()},
		{content.Migrations(), content.Tables()},
		{support.Migrations(), support.Tables()},
		{payment.Migrations(), payment.Tables()},
		{openid.Migrations(), openid.Tables()},
		{disclosure.Migrations(), disclosure.Tables()},
	}
}

// Migrations returns every module's migrations in the order they apply.
func Migrations() []store.Migrations {
	mods := Modules()
	out := make([]store.Migrations, len(mods))
	for i, m := range mods {
		out[i] = m.Migrations
	}
	return out
}

// Registry is the personal-data registry of every table Steward creates.
func Registry() (*registry.Registry, error) {
	mods := Modules()
	tables := make([][]registry.Table, len(mods))
	for i, m := range mods {
		tables[i] = m.Tables
	}
	return registry.New(tables...)
}
