//! What went wrong in a scenario file, and where.
//!
//! A scenario author fixes a file from the terminal, so every problem carries the file
//! name and, whenever the problem comes from the text, the line and column — rendered the
//! way compilers do (`file:line:col: message`) so editors can jump to it. Parsing keeps
//! going after a problem, so one run reports everything that is wrong, not just the first.

use std::fmt;
use std::ops::Range;

/// One thing wrong with a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file; `None` when the problem is not about one place in the
    /// text (an unreadable file, or a command-line override that clashes with the file).
    pub line: Option<usize>,
    /// 1-based column (in characters) on `line`.
    pub column: Option<usize>,
    /// What is wrong, and for unknown names, the valid choices.
    pub message: String,
}

/// Every problem found in one scenario file. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    file: String,
    problems: Vec<Problem>,
}

impl ScenarioError {
    pub(super) fn new(file: &str, problems: Vec<Problem>) -> Self {
        ScenarioError {
            file: file.to_owned(),
            problems,
        }
    }

    /// A problem with the file as a whole (it could not be read, an override clashes).
    pub(super) fn whole_file(file: &str, message: String) -> Self {
        Self::new(
            file,
            vec![Problem {
                line: None,
                column: None,
                message,
            }],
        )
    }

    /// The file name as given to [`super::parse`] or [`super::load`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The problems, in the order they appear in the file.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match (p.line, p.column) {
                (Some(line), Some(col)) => write!(f, "{}:{line}:{col}: {}", self.file, p.message)?,
                (Some(line), None) => write!(f, "{}:{line}: {}", self.file, p.message)?,
                _ => write!(f, "{}: {}", self.file, p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// Collects problems while a file is read, turning the byte spans the TOML parser gives
/// into the lines and columns people read.
pub(super) struct Problems<'t> {
    text: &'t str,
    found: Vec<(usize, Problem)>,
}

impl<'t> Problems<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Problems {
            text,
            found: Vec::new(),
        }
    }

    /// Records a problem at the start of `span`.
    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.line_column(span.start);
        self.found.push((
            span.start,
            Problem {
                line: Some(line),
                column: Some(column),
                message: message.into(),
            },
        ));
    }

    /// The 1-based line of a byte offset (for fields such as `Step::line`).
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    pub(super) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The error for everything found, sorted by position so the report reads top-down
    /// (tables are visited in key order, not file order).
    pub(super) fn into_error(mut self, file: &str) -> ScenarioError {
        self.found.sort_by_key(|(offset, _)| *offset);
        ScenarioError::new(file, self.found.into_iter().map(|(_, p)| p).collect())
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_become_lines_and_columns() {
        let mut p = Problems::new("a = 1\nbé = \"x\"\n");
        p.at(10..11, "second");
        p.at(0..1, "first");
        let err = p.into_error("f.toml");
        assert_eq!(err.to_string(), "f.toml:1:1: first\nf.toml:2:4: second");
    }

    #[test]
    fn whole_file_problems_have_no_position() {
        let err = ScenarioError::whole_file("f.toml", "cannot read".into());
        assert_eq!(err.to_string(), "f.toml: cannot read");
    }
}
