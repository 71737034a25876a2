"""Opening a repository: upgrade its catalog, then recover from what earlier processes left: runs that crashed
mid-ingest, images without a version, images missing from the search index of an older catalog."""

from __future__ import annotations

from fairimage.model.errors import NotFoundError
from fairimage.services.discovery.search import index_missing
from fairimage.services.governance.versions import record_unversioned
from fairimage.services.ingest.runs import clean_stale_runs
from fairimage.services.repository import Repository, connect
from fairimage.settings import Settings


def open_repository(settings: Settings) -> Repository:
    """Open an existing repository, upgrading its catalog and clearing what crashed runs left staged."""
    if not settings.config_path.is_file():
        raise NotFoundError(
            f"{settings.repo} is not a fairimage repository; create it with 'fairimage init {settings.repo}'"
        )
    repository = connect(settings)
    clean_stale_runs(repository)
    record_unversioned(repository)
    if repository.upgraded:  # images are indexed as they are published; only older catalogs lack entries
        index_missing(repository)
    return repository
