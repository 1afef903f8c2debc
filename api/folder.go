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

// ExportBase downloads every file of a base version into dir (created if
// needed), each written to a temporary name and renamed into place.
func (c *Client) ExportBase(ctx context.Context, name, ref, dir string) (BaseVersion, error) {
	v, err := c.Base(ctx, name, ref)
	if err != nil {
		return v, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v, err
	}
	for _, f := range v.Files {
		if err := c.downloadFile(ctx, "/v1/bases/"+url.PathEscape(name)+"/versions/"+url.PathEscape(v.ID)+"/files/"+url.PathEscape(f.Name), filepath.Join(dir, f.Name)); err != nil {
			return v, fmt.Errorf("export %s: %w", f.Name, err)
		}
	}
	return v, nil
}

func (c *Client) downloadFile(ctx context.Context, path, dst string) error {
	resp, err := c.send(ctx, "GET", path, nil, nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// ExportModel downloads a model version in format (peft, merged, gguf, or
// gguf:f32, gguf:f16, gguf:q8_0 to choose the GGUF tensor type) and writes
// its files into dir.
func (c *Client) ExportModel(ctx context.Context, name, ref, format, dir string) ([]string, error) {
	q := url.Values{"format": {format}}
	resp, err := c.send(ctx, "GET", "/v1/registry/models/"+url.PathEscape(name)+"/versions/"+url.PathEscape(orLatest(ref))+"/export", q, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	tr := tar.NewReader(resp.Body)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return names, fmt.Errorf("read export: %w", err)
		}
		if h.Name != filepath.Base(h.Name) || strings.HasPrefix(h.Name, ".") || h.Typeflag != tar.TypeReg {
			return names, fmt.Errorf("export holds an unexpected entry %q", h.Name)
		}
		f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			return names, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return names, err
		}
		names = append(names, h.Name)
	}
}
