package files

import (
	"fmt"
	"mime"
	"slices"
	"strings"

	"github.com/gabriel-vasile/mimetype"

	filesv1 "github.com/lethehq/lethe/gen/go/lethe/files/v1"
)

// category is one FileCategory: the types it allows (as mimetype names
// them, exactly: a child type such as a JAR inside ZIP is not allowed by
// its parent) and what a file picker should accept.
type category struct {
	label  string
	types  []string
	accept []string
}

var categories = map[filesv1.FileCategory]category{
	filesv1.FileCategory_FILE_CATEGORY_IMAGE: {"images",
		[]string{"image/png", "image/apng", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/heic", "image/heic-sequence", "image/heif", "image/heif-sequence"},
		[]string{".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/heic", "image/heif"}},
	filesv1.FileCategory_FILE_CATEGORY_PDF: {"PDF",
		[]string{"application/pdf"},
		[]string{".pdf", "application/pdf"}},
	filesv1.FileCategory_FILE_CATEGORY_TEXT: {"plain text",
		// JSON counts as text: a note that starts with "{" or "[" is read
		// as JSON, and it is served as an attachment all the same.
		[]string{"text/plain", "text/csv", "text/tab-separated-values", "application/json"},
		[]string{".txt", ".csv", ".tsv", ".log", ".md", "text/plain", "text/csv"}},
	filesv1.FileCategory_FILE_CATEGORY_OFFICE: {"office documents",
		[]string{"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
			"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
			"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
			"application/vnd.openxmlformats-officedocument.presentationml.presentation",
			"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
			"application/vnd.oasis.opendocument.presentation", "text/rtf"},
		[]string{".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".rtf"}},
	filesv1.FileCategory_FILE_CATEGORY_ARCHIVE: {"archives",
		[]string{"application/zip", "application/x-7z-compressed", "application/gzip", "application/x-tar"},
		[]string{".zip", ".7z", ".gz", ".tgz", ".tar", "application/zip", "application/gzip"}},
}

// never are types refused whatever the account allows, with everything
// below them in mimetype's tree (an XML child, an ELF variant, a ZIP that
// is a JAR): markup a browser would run, scripts and executables.
var never = map[string]bool{
	"text/html": true, "application/xhtml+xml": true, "image/svg+xml": true,
	"text/xml": true, "application/xml": true,
	"text/javascript": true, "application/javascript": true,
	"text/x-php": true, "text/x-python": true, "text/x-perl": true, "text/x-ruby": true,
	"text/x-lua": true, "text/x-tcl": true, "text/x-shellscript": true,
	"application/x-elf": true, "application/vnd.microsoft.portable-executable": true,
	"application/x-mach-binary": true, "application/x-ms-installer": true,
	"application/java-archive": true, "application/vnd.android.package-archive": true,
	"application/x-java-applet": true, "application/wasm": true,
	"application/x-ms-shortcut": true, "application/x-chrome-extension": true,
	"application/x-shockwave-flash": true, "application/x-bytecode.python": true,
	"application/vnd.ms-htmlhelp": true,
}

// categoriesOr returns the account's categories (known ones only), or the
// defaults when it chose none.
func categoriesOr(cs []filesv1.FileCategory) []filesv1.FileCategory {
	var out []filesv1.FileCategory
	for _, c := range cs {
		if _, ok := categories[c]; ok && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		out = slices.Clone(DefaultCategories)
	}
	slices.Sort(out)
	return out
}

// accept is the <input accept> value for cs.
func accept(cs []filesv1.FileCategory) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, categories[c].accept...)
	}
	return strings.Join(parts, ",")
}

func labels(cs []filesv1.FileCategory) string {
	var l []string
	for _, c := range cs {
		l = append(l, categories[c].label)
	}
	return strings.Join(l, ", ")
}

// baseType is a media type without its parameters ("text/plain").
func baseType(t string) string {
	if mt, _, err := mime.ParseMediaType(t); err == nil {
		return mt
	}
	return t
}

// detect reads the type of a file from the bytes of its first chunk and
// checks it against the allowed categories. It returns the type as stored
// and served (parameters such as a text charset included), or an
// InvalidArgument error naming the detected type and what is allowed.
func detect(first []byte, allowed []filesv1.FileCategory) (string, error) {
	m := mimetype.Detect(first)
	base := baseType(m.String())
	for p := m; p != nil; p = p.Parent() {
		if never[baseType(p.String())] {
			return "", refusal(base, allowed)
		}
	}
	for _, c := range allowed {
		if slices.Contains(categories[c].types, base) {
			return m.String(), nil
		}
	}
	return "", refusal(base, allowed)
}

type typeError struct{ detected, allowed string }

func (e *typeError) Error() string {
	return fmt.Sprintf("files of type %s are not allowed here; allowed: %s", e.detected, e.allowed)
}

func refusal(detected string, allowed []filesv1.FileCategory) error {
	return &typeError{detected: detected, allowed: labels(allowed)}
}

// servedType is the Content-Type a download link answers with: the
// detected type for images, PDF and text, application/octet-stream for
// everything else.
func servedType(stored string) string {
	b := baseType(stored)
	if strings.HasPrefix(b, "image/") || b == "application/pdf" || b == "text/plain" || b == "text/csv" {
		return stored
	}
	return "application/octet-stream"
}
