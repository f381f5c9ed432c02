//! `labels.tsv`: which photo of a labelled folder is what.
//!
//! Tab-separated, a header row naming at least `path`, `label` and `category` (any order,
//! more columns allowed). `label` is `case` or `personal` (`skip` rows are left out without a
//! word: the project's own label files mark photos that are neither). `source_repo`, when
//! there, names where a photo came from (a repository, a case, an officer, a unit) and makes
//! the cross-validation grouped by it. `sha256`, when there, is checked against the photo.
//! A row that cannot be used is a [`BadRow`]: one line, and the rest goes on.

use std::path::{Path, PathBuf};

use super::FitError;

/// One usable row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The labels file's folder.
    pub dir: PathBuf,
    /// Line number in `labels.tsv` (1 = header).
    pub line: usize,
    /// As written in the file, relative to `dir`.
    pub path: String,
    pub case: bool,
    pub category: String,
    /// `source_repo`, if the file has that column and the row a value.
    pub source: Option<String>,
    /// `sha256`, if the file has that column and the row a value.
    pub sha256: Option<String>,
}

impl Row {
    /// The photo's file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(&self.path)
    }

    /// `folder/path`, how reports name the photo.
    pub fn name(&self) -> String {
        let folder = self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        format!("{folder}/{}", self.path)
    }
}

/// A row that was left out, and why: one line for the person running the fit.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    pub labels: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}: {}", self.labels.display(), self.line, self.reason)
    }
}

/// The labels file of a folder.
pub fn labels_file(dir: &Path) -> PathBuf {
    dir.join("labels.tsv")
}

/// Read a folder's `labels.tsv`: the usable rows, and the others with their reason. A file
/// that cannot be read or has no usable header is an error of the whole folder.
pub fn read(dir: &Path) -> Result<(Vec<Row>, Vec<BadRow>), FitError> {
    let file = labels_file(dir);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| FitError::Labels { path: file.clone(), reason: format!("cannot read it: {e}") })?;
    parse(dir, &file, &text)
}

/// [`read`] on text already read (`file` names it in messages).
pub fn parse(dir: &Path, file: &Path, text: &str) -> Result<(Vec<Row>, Vec<BadRow>), FitError> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.trim_start_matches('\u{feff}').split('\t').map(str::trim).collect(),
        None => return Err(FitError::Labels { path: file.to_path_buf(), reason: "empty file".into() }),
    };
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(path_col), Some(label_col), Some(cat_col)) = (col("path"), col("label"), col("category")) else {
        return Err(FitError::Labels {
            path: file.to_path_buf(),
            reason: format!(
                "the header row needs the columns path, label and category (tab-separated); it has {:?}",
                header
            ),
        });
    };
    let (source_col, sha_col) = (col("source_repo"), col("sha256"));
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split('\t').map(str::trim).collect();
        let bad_row = |reason: String| BadRow { labels: file.to_path_buf(), line: line_no, reason };
        let get = |c: usize| cells.get(c).copied().filter(|v| !v.is_empty());
        let (Some(path), Some(label), Some(category)) = (get(path_col), get(label_col), get(cat_col)) else {
            bad.push(bad_row(format!("needs path, label and category; has {} column(s)", cells.len())));
            continue;
        };
        let case = match label {
            "case" => true,
            "personal" => false,
            "skip" => continue,
            other => {
                bad.push(bad_row(format!("{path}: unknown label {other:?} (case or personal)")));
                continue;
            }
        };
        rows.push(Row {
            dir: dir.to_path_buf(),
            line: line_no,
            path: path.to_string(),
            case,
            category: category.to_string(),
            source: source_col.and_then(get).map(str::to_string),
            sha256: sha_col.and_then(get).map(str::to_ascii_lowercase),
        });
    }
    Ok((rows, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_shared_data_layout_and_reports_bad_rows_by_line() {
        let text = "path\tlabel\tcategory\tsource_repo\tlicense\n\
                    case/cash/a.jpg\tcase\tcash\tx/y\tMIT\n\
                    personal/pets/b.jpg\tpersonal\tpets\t\tCC0\n\
                    personal/pets/c.jpg\tmaybe\tpets\tx/y\tCC0\n\
                    \n\
                    only-a-path.jpg\n\
                    logo.png\tskip\tnone\tx/z\t-\n";
        let (rows, bad) = parse(Path::new("/d/set"), Path::new("/d/set/labels.tsv"), text).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].case, rows[0].category.as_str(), rows[0].source.as_deref()), (true, "cash", Some("x/y")));
        assert_eq!((rows[1].case, rows[1].source.as_deref(), rows[1].line), (false, None, 3));
        assert_eq!(rows[0].name(), "set/case/cash/a.jpg");
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert_eq!(
            bad[0].to_string(),
            "/d/set/labels.tsv line 4: personal/pets/c.jpg: unknown label \"maybe\" (case or personal)"
        );
        assert!(
            bad[1].to_string().starts_with("/d/set/labels.tsv line 6: needs path, label and category"),
            "{}",
            bad[1]
        );
    }

    #[test]
    fn columns_may_come_in_any_order_and_a_missing_one_is_an_error_of_the_file() {
        let text = "category\tpath\tlabel\nfood\tf.jpg\tpersonal\n";
        let (rows, bad) = parse(Path::new("d"), Path::new("d/labels.tsv"), text).expect("parses");
        assert_eq!((rows[0].path.as_str(), rows[0].category.as_str(), bad.len()), ("f.jpg", "food", 0));
        let err = parse(Path::new("d"), Path::new("d/labels.tsv"), "path,label,category\n").expect_err("csv");
        assert!(err.to_string().contains("path, label and category"), "{err}");
    }
}
