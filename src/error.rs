//! One error type, one line each, mapped to the documented exit codes.

use std::fmt;
use std::process::ExitCode;

#[derive(Debug)]
pub enum Error {
    /// The command line is wrong; nothing was touched. Exit code 2.
    Usage(String),
    /// The system refused or is not as expected. Exit code 1.
    Runtime(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The process's exit code for this error.
    pub fn code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Runtime(_) => 1,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => f.write_str(m),
        }
    }
}
