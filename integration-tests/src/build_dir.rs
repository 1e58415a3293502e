//! Where the test binary that runs now was built: the binaries it drives sit next to it.

use std::path::PathBuf;

use anyhow::Context;

/// `<target>/<profile>/` of the running test binary (`<target>/<profile>/deps/<test>`).
pub struct BuildDir {
    /// `<target>`: what `CARGO_TARGET_DIR` must be for cargo or a script to find the binaries.
    pub target: PathBuf,
    /// `<target>/<profile>`: where the binaries are.
    pub profile_dir: PathBuf,
    /// The profile's name (`debug`, `release` or a custom one).
    pub profile: String,
}

impl BuildDir {
    pub fn of_this_test() -> anyhow::Result<BuildDir> {
        let exe = std::env::current_exe()?;
        let profile_dir = exe
            .parent()
            .and_then(std::path::Path::parent)
            .context("no profile directory")?;
        let target = profile_dir.parent().context("no target directory")?;
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("profile directory name")?;
        Ok(BuildDir {
            target: target.to_path_buf(),
            profile_dir: profile_dir.to_path_buf(),
            profile: profile.to_string(),
        })
    }
}
