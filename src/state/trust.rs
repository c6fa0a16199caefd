//! Trust store: the recipients each repository had when this host first used it, so a changed
//! list (someone adding their own key) is noticed instead of silently encrypted to; and the
//! signers whose snapshots this host accepts from each repository.

use super::{now, State};
use crate::error::{Error, Hint, Hinted, Result};
use rusqlite::{params, OptionalExtension};

impl State {
    /// Trusts a repository's recipients on first sight and refuses them if they change later
    /// (someone with write access to the target could otherwise add their own key).
    pub fn pin_recipients(
        &self,
        repo_id: &str,
        location: &str,
        recipients: &[String],
        accept: bool,
    ) -> Result<()> {
        let mut sorted = recipients.to_vec();
        sorted.sort();
        let joined = sorted.join("\n");
        let pinned: Option<String> = self
            .conn
            .query_row(
                "SELECT recipients FROM repos WHERE repo_id = ?1",
                [repo_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        match pinned {
            Some(p) if p == joined => Ok(()),
            Some(_) if !accept => Err(Error::Key(format!(
                "the recipients recorded in repository {location} changed since this host first used it"
            ).hinted(Hint::AcceptRecipients))),
            _ => {
                self.conn
                    .execute(
                        "INSERT INTO repos (repo_id, location, recipients, pinned_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (repo_id) DO UPDATE SET location = ?2, recipients = ?3, pinned_at = ?4",
                        params![repo_id, location, joined, now()],
                    )
                    .map_err(|e| self.err(e))?;
                Ok(())
            }
        }
    }

    /// Trusts `signer`'s snapshots in repository `repo_id` from now on.
    pub fn trust_signer(&self, repo_id: &str, signer: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO trusted_signers (repo_id, signer, pinned_at) VALUES (?1, ?2, ?3)",
                params![repo_id, signer, now()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The signers trusted for repository `repo_id`.
    pub fn trusted_signers(&self, repo_id: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT signer FROM trusted_signers WHERE repo_id = ?1 ORDER BY signer")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([repo_id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }
}
