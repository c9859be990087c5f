package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// PRIVACY.md maps every promise to the tests that prove it. A test named
// there must exist: renaming or deleting it fails here, so the map cannot
// quietly stop being true.
func TestPrivacyDoc_NamesOnlyTestsThatExist(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "PRIVACY.md"))
	if err != nil {
		t.Fatal(err)
	}
	var goTests, e2e strings.Builder
	for _, dir := range []string{"server", "sdk"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p)
			goTests.Write(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "e2e", "*.test.mjs"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e2e.Write(b)
	}
	names := regexp.MustCompile("`(Test\\w+)`").FindAllStringSubmatch(string(doc), -1)
	if len(names) < 40 {
		t.Fatalf("PRIVACY.md names %d tests; the promise map is missing", len(names))
	}
	for _, m := range names {
		if !strings.Contains(goTests.String(), "func "+m[1]+"(") {
			t.Errorf("PRIVACY.md names %s, which no test file defines", m[1])
		}
	}
	// e2e tests are named by their title: e2e "title" (titles may wrap lines).
	flat := strings.Join(strings.Fields(string(doc)), " ")
	titles := regexp.MustCompile(`e2e "([^"]+)"(?: and "([^"]+)")?`).FindAllStringSubmatch(flat, -1)
	if len(titles) == 0 {
		t.Fatal("PRIVACY.md names no end-to-end test")
	}
	for _, m := range titles {
		for _, title := range m[1:] {
			if title != "" && !strings.Contains(e2e.String(), `test("`+title+`"`) {
				t.Errorf("PRIVACY.md names the e2e test %q, which e2e/ does not define", title)
			}
		}
	}
}
