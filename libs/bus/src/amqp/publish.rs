//! Publishing on the shared publishing channels: confirmed, or as hints.

use lapin::Confirmation;
use lapin::options::BasicPublishOptions;

use super::convert::{properties, short};
use super::link::{Lane, Link};
use crate::{BusError, OutMessage};

impl Link {
    /// Publishes to the logical `exchange` ("" is the default exchange) and waits for the
    /// broker's confirm. Only the frame send is ordered on the channel; confirms of
    /// concurrent publishers are awaited in parallel.
    pub(crate) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        msg: &OutMessage,
        mandatory: bool,
    ) -> Result<(), BusError> {
        let physical = short(&self.physical(exchange), "exchange name")?;
        let key = short(routing_key, "routing key")?;
        let props = properties(msg, true)?;
        let channel = self.publisher(Lane::Confirmed).await?;
        let options = BasicPublishOptions { mandatory, immediate: false };
        let confirm =
            channel.basic_publish(physical, key, options, &msg.body, props).await.map_err(|e| self.error(&e))?;
        match confirm.await.map_err(|e| self.error(&e))? {
            Confirmation::Ack(None) => Ok(()),
            // basic.return arrives before the ack of an unroutable mandatory message.
            Confirmation::Ack(Some(_)) => {
                Err(BusError::Unroutable { exchange: exchange.to_owned(), routing_key: routing_key.to_owned() })
            }
            Confirmation::Nack(_) | Confirmation::NotRequested => Err(BusError::NotConfirmed),
        }
    }

    /// Publishes a hint: not mandatory, not persistent, on the channel without confirms.
    /// Returns once the frames are written to the connection.
    pub(crate) async fn publish_hint(
        &self,
        exchange: &str,
        routing_key: &str,
        msg: &OutMessage,
    ) -> Result<(), BusError> {
        let physical = short(&self.physical(exchange), "exchange name")?;
        let key = short(routing_key, "routing key")?;
        let props = properties(msg, false)?;
        let channel = self.publisher(Lane::Hints).await?;
        let options = BasicPublishOptions { mandatory: false, immediate: false };
        // Without confirms the returned future resolves at once (`NotRequested`).
        channel.basic_publish(physical, key, options, &msg.body, props).await.map_err(|e| self.error(&e))?;
        Ok(())
    }
}
