"""Everything written for people: HTML pages (:mod:`~neurocomp.report.energy_page`, …) and the small
formatting and plotting helpers they share (:mod:`~neurocomp.report.common`)."""
