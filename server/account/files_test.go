package account

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	accountv1 "github.com/lethehq/lethe/gen/go/lethe/account/v1"
	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
	"github.com/lethehq/lethe/server/errs"
	"github.com/lethehq/lethe/server/files"
	"github.com/lethehq/lethe/server/store"
)

// Files settings: what an account allows in its chats, within the server's
// limits, read by the files domain through (*Store).FileSettings.

var _ files.Settings = (*Store)(nil)

const (
	image  = filesv1.FileCategory_FILE_CATEGORY_IMAGE
	pdf    = filesv1.FileCategory_FILE_CATEGORY_PDF
	office = filesv1.FileCategory_FILE_CATEGORY_OFFICE
)

func (e *env) fileSettings(accountID string) files.AccountFiles {
	e.t.Helper()
	f, err := e.store.FileSettings(context.Background(), accountID)
	if err != nil {
		e.t.Fatalf("FileSettings: %v", err)
	}
	return f
}

func TestFileSettings_DefaultsBeforeFirstSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	if got := e.fileSettings(admin.me.AccountId); got.Disabled || got.MaxFileBytes != 0 || got.MaxChatBytes != 0 || len(got.Categories) != 0 {
		t.Fatalf("file settings of a new account = %+v, want the server's defaults", got)
	}
	// Saving the other settings leaves files at their defaults.
	if _, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.HideVisitorIp = true })); err != nil {
		t.Fatal(err)
	}
	if got := e.fileSettings(admin.me.AccountId); got.Disabled || got.MaxFileBytes != 0 || got.MaxChatBytes != 0 || len(got.Categories) != 0 {
		t.Fatalf("file settings after saving other settings = %+v", got)
	}
}

func TestUpdateSettings_SavesFileSettingsForThatAccountOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	other := e.addAccount("acct-other", "admin@other.example")
	want := edited(t, admin, func(s *accountv1.Settings) {
		s.FilesDisabled = true
		s.MaxFileBytes = 2 << 20
		s.MaxChatFileBytes = 8 << 20
		s.FileCategories = []filesv1.FileCategory{pdf, image}
	})
	got, err := admin.updateSettings(want)
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]*accountv1.Settings{"UpdateSettings": got, "GetSettings": settingsOf(t, admin)} {
		if !proto.Equal(s, want) {
			t.Fatalf("%s = %v, want %v", what, s, want)
		}
	}
	f := e.fileSettings(admin.me.AccountId)
	if !f.Disabled || f.MaxFileBytes != 2<<20 || f.MaxChatBytes != 8<<20 || !slices.Equal(f.Categories, []filesv1.FileCategory{pdf, image}) {
		t.Fatalf("FileSettings = %+v", f)
	}
	if f := e.fileSettings(other.me.AccountId); f.Disabled || f.MaxFileBytes != 0 || len(f.Categories) != 0 {
		t.Fatalf("the other account's file settings changed: %+v", f)
	}
	// And back: files on, the server's limits, the default categories.
	if _, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) {
		s.FilesDisabled, s.MaxFileBytes, s.MaxChatFileBytes, s.FileCategories = false, 0, 0, nil
	})); err != nil {
		t.Fatal(err)
	}
	if f := e.fileSettings(admin.me.AccountId); f.Disabled || f.MaxFileBytes != 0 || f.MaxChatBytes != 0 || len(f.Categories) != 0 {
		t.Fatalf("FileSettings after resetting = %+v", f)
	}
}

func TestFileSettings_UnknownAccountIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.store.FileSettings(context.Background(), "no-such-account")
	if errs.CodeOf(err) != connect.CodeNotFound || !errors.Is(err, ErrNotFound) {
		t.Fatalf("FileSettings of an unknown account: %v, want NotFound", err)
	}
}

// The server's limits bound the account's, and a refusal names the limit.
func TestUpdateSettings_FileLimitsWithinTheServers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		opts             Options
		fileCap, chatCap int64
		fileText         string
		chatText         string
	}{
		{name: "server defaults", fileCap: files.DefaultMaxFileBytes, chatCap: files.DefaultMaxChatBytes, fileText: "10 MiB", chatText: "50 MiB"},
		{name: "configured", opts: Options{MaxFileBytes: 1 << 20, MaxChatBytes: 3 << 20}, fileCap: 1 << 20, chatCap: 3 << 20, fileText: "1 MiB", chatText: "3 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withOptions(func(o *Options) { o.MaxFileBytes, o.MaxChatBytes = tc.opts.MaxFileBytes, tc.opts.MaxChatBytes }))
			admin := e.admin()
			got, err := admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.MaxFileBytes, s.MaxChatFileBytes = tc.fileCap, tc.chatCap }))
			if err != nil {
				t.Fatalf("exactly the server's limits: %v", err)
			}
			if got.MaxFileBytes != tc.fileCap || got.MaxChatFileBytes != tc.chatCap {
				t.Fatalf("saved %d, %d", got.MaxFileBytes, got.MaxChatFileBytes)
			}
			before := settingsOf(t, admin)
			_, err = admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.MaxFileBytes = tc.fileCap + 1 }))
			wantCode(t, "file one byte over", err, connect.CodeInvalidArgument)
			if msg := messageOf(err); !strings.Contains(msg, "max_file_bytes") || !strings.Contains(msg, tc.fileText) {
				t.Fatalf("message %q does not name the limit %s", msg, tc.fileText)
			}
			_, err = admin.updateSettings(edited(t, admin, func(s *accountv1.Settings) { s.MaxChatFileBytes = tc.chatCap + 1 }))
			wantCode(t, "chat one byte over", err, connect.CodeInvalidArgument)
			if msg := messageOf(err); !strings.Contains(msg, "max_chat_file_bytes") || !strings.Contains(msg, tc.chatText) {
				t.Fatalf("message %q does not name the limit %s", msg, tc.chatText)
			}
			if after := settingsOf(t, admin); !proto.Equal(after, before) {
				t.Fatalf("refused updates changed the settings: %v, were %v", after, before)
			}
		})
	}
}

func TestUpdateSettings_RejectsBadFileSettingsAndKeepsSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.admin()
	before := settingsOf(t, admin)
	for _, tc := range []struct {
		name string
		edit func(*accountv1.Settings)
	}{
		{"negative file size", func(s *accountv1.Settings) { s.MaxFileBytes = -1 }},
		{"negative chat total", func(s *accountv1.Settings) { s.MaxChatFileBytes = -1 }},
		{"chat total below the file size", func(s *accountv1.Settings) { s.MaxFileBytes, s.MaxChatFileBytes = 2<<20, 1<<20 }},
		{"unspecified category", func(s *accountv1.Settings) { s.FileCategories = []filesv1.FileCategory{pdf, 0} }},
		{"unknown category", func(s *accountv1.Settings) { s.FileCategories = []filesv1.FileCategory{42} }},
		{"category twice", func(s *accountv1.Settings) { s.FileCategories = []filesv1.FileCategory{pdf, office, pdf} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.updateSettings(edited(t, admin, tc.edit))
			wantCode(t, "UpdateSettings", err, connect.CodeInvalidArgument)
		})
	}
	if after := settingsOf(t, admin); !proto.Equal(after, before) {
		t.Fatalf("settings changed by refused updates: %v, were %v", after, before)
	}
	// One limit alone is fine either way round: 0 is the server's.
	for _, edit := range []func(*accountv1.Settings){
		func(s *accountv1.Settings) { s.MaxFileBytes, s.MaxChatFileBytes = 0, 1<<20 },
		func(s *accountv1.Settings) { s.MaxFileBytes, s.MaxChatFileBytes = 1<<20, 0 },
		func(s *accountv1.Settings) { s.MaxFileBytes, s.MaxChatFileBytes = 1<<20, 1<<20 },
	} {
		if _, err := admin.updateSettings(edited(t, admin, edit)); err != nil {
			t.Fatalf("UpdateSettings: %v", err)
		}
	}
}

// Migration 003 adds the file settings to an account saved before it, at
// their defaults, keeping what was saved.
func TestMigration_FileSettingsAddedToExistingSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "lethe.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	before := fstest.MapFS{}
	for _, name := range []string{"001_accounts.sql", "002_settings.sql"} {
		b, err := fs.ReadFile(migrations, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	if err := db.Migrate(ctx, "account", before); err != nil {
		t.Fatal(err)
	}
	if _, err := db.W.ExecContext(ctx, `INSERT INTO accounts (id, name, created_at) VALUES ('a', 'A', 0);
		INSERT INTO account_settings (account_id, hide_visitor_ip, idle_timeout_seconds) VALUES ('a', 1, 1234)`); err != nil {
		t.Fatal(err)
	}
	st, err := NewStore(ctx, db)
	if err != nil {
		t.Fatalf("migrate to the file settings: %v", err)
	}
	s, err := st.Settings(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !s.HideVisitorIP || s.IdleTimeoutSeconds != 1234 || s.FilesDisabled || s.MaxFileBytes != 0 || s.MaxChatFileBytes != 0 || len(s.FileCategories) != 0 {
		t.Fatalf("settings after the migration = %+v", s)
	}
}
