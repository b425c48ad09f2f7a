-- The existing `customers` table of the legacy system, as it stands on its MySQL/MariaDB server.
-- Switchyard never migrates it; `manage.py ensure_legacy_table` creates it for development and tests.
CREATE TABLE IF NOT EXISTS `customers` (
  `customer_id` INT NOT NULL AUTO_INCREMENT,
  `customer_name` VARCHAR(100) NOT NULL,
  `customer_email` VARCHAR(100) NOT NULL,
  `created_date` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`customer_id`),
  KEY `customers_email` (`customer_email`),
  KEY `customers_name` (`customer_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
