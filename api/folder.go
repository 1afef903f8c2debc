package api

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ImportBaseDir uploads a local Hugging Face model folder: every regular,
// non-hidden file directly in dir, as a tar stream.
func (c *Client) ImportBaseDir(ctx context.Context, name, region, dir string) (BaseImport, error) {
	names, err := folderFiles(dir)
	if err != nil {
		return BaseImport{}, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, dir, names)) }()
	defer pr.Close()
	return c.ImportBase(ctx, name, region, pr)
}

// folderFiles lists the regular files directly in dir, skipping hidden ones
// (.git, .gitattributes) and sub-folders.
func folderFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("base import: %w", err)
	}
	var names []string
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), ".") || !en.Type().IsRegular() {
			continue
		}
		names = append(names, en.Name())
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("base import: %s has no files; expected config.json, tokenizer.json and *.safetensors", dir)
	}
	return names, nil
}

func writeTar(w io.Writer, dir string, names []string) error {
	tw := tar.NewWriter(w)
	for _, n := range names {
		if err := addFile(tw, dir, n); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, dir, name string) error {
	// #nosec G304 -- name comes from listing dir, the folder being exported, not from a request
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("pack %s: %w", name, err)
	}
	return nil
}

// BaseFile opens one file of a base version for reading; the caller closes
// it. A transfer the server cut reads as an error, never as a short file.
// Writing it somewhere is the caller's business: the file name comes from
// the server (see tailor base export for a folder written safely).
func (c *Client) BaseFile(ctx context.Context, name, ref, file string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, "GET", "/v1/bases/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref))+"/files/"+url.PathEscape(file), nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ExportModel opens a model version's export in format (peft, merged,
// gguf, or gguf:f32, gguf:f16, gguf:q8_0 to choose the GGUF tensor type):
// a tar stream of its files, read as the server writes it; the caller
// closes it. A transfer the server cut reads as an error. The entry names
// come from the server: check them before using them as paths (tailor
// model export does).
func (c *Client) ExportModel(ctx context.Context, name, ref, format string) (io.ReadCloser, error) {
	q := url.Values{"format": {format}}
	resp, err := c.send(ctx, "GET", "/v1/registry/models/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref))+"/export", q, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
